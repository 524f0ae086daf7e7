"""What the pipeline's later stages need, checked before its first stage runs.

`nox -s pipeline` spends minutes validating, indexing, evaluating and fine-tuning before `build_image` first
touches Docker. Without these checks a missing engine, an unreachable base image or a taken port shows up
only then, as some later stage's error. Here each problem is one line with its fix, and nothing has run.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.errors import DocsAssistantError

#: the pipeline's stages, in order, from the first that needs the Docker Engine
DOCKER_STAGES = ("build_image", "deploy")
#: what to run instead when the Docker stages cannot
WITHOUT_DOCKER = "./noxw -s pipeline -- --until finetune"


@dataclass(frozen=True)
class Problem:
    """One thing a later stage needs and lacks, with what to do about it."""

    stage: str
    what: str
    fix: str

    def line(self) -> str:
        return f"{self.stage}: {self.what}: {self.fix}"


def check(settings: Settings, stages: list[str], *, without: str = WITHOUT_DOCKER) -> list[Problem]:
    """The problems the given pipeline stages would meet; empty when none (or when none needs Docker)."""
    if not any(stage in DOCKER_STAGES for stage in stages):
        return []
    from docs_assistant.engine import docker_client

    try:
        client = docker_client()
    except DocsAssistantError as exc:
        return [Problem("build_image", f"{exc.message}", f"start Docker, or run the stages without it: {without}")]
    problems = [*base_image(client, settings)] if "build_image" in stages else []
    if "deploy" in stages:
        problems += swarm(client) + ports(client)
    return problems


def base_image(client: Any, settings: Settings) -> list[Problem]:
    """The build's base image is on this engine, or the engine can reach its registry to pull it."""
    from docker.errors import DockerException

    name = settings.image.base_image
    try:
        client.images.get(name)
        return []
    except DockerException:
        pass
    try:
        client.images.get_registry_data(name)
        return []
    except DockerException as exc:
        reason = (getattr(exc, "explanation", None) or str(exc)).splitlines()[0][:200]
        fix = f"pull it, or set DOCS_ASSISTANT_IMAGE__BASE_IMAGE to an image this engine has ({reason})"
        return [Problem("build_image", f"base image {name!r} is not on this engine and cannot be pulled", fix)]


def swarm(client: Any) -> list[Problem]:
    """Deploys create swarm services: this engine is a manager, or can become one (`docker swarm init`)."""
    state = client.info().get("Swarm") or {}
    node = state.get("LocalNodeState", "inactive")
    if node == "inactive" or (node == "active" and state.get("ControlAvailable")):
        return []
    if node == "active":
        return [Problem("deploy", "this engine is a swarm worker", "deploy from a manager node (DOCKER_HOST)")]
    return [Problem("deploy", f"swarm is {node}", "fix the engine's swarm (`docker info`), or leave it")]


def ports(client: Any) -> list[Problem]:
    """The ports of the environments the pipeline deploys are free, or already ours (a redeploy reuses them)."""
    from docs_assistant.deploy.environments import ENVIRONMENTS_DIR, load_environments, promotion_chain
    from docs_assistant.deploy.swarm import published_ports

    environments = load_environments()
    published = published_ports(client)  # swarm services' and loopback proxies' (containers) ports
    problems = []
    for name in promotion_chain(environments):
        env = environments[name]
        if env.approval:  # the pipeline stops before an environment that waits for approval
            break
        if env.target != "docker" or env.docker_host or env.port in published:
            continue
        if _listening(env.port):
            where = ENVIRONMENTS_DIR / f"{name}.toml"
            fix = f"stop what listens there, or change `port` in {where}"
            problems.append(Problem("deploy", f"port {env.port} of {name} is taken by another program", fix))
    return problems


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
