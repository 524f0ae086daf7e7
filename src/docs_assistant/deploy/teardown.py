"""`docs-assistant env down`: stop what `deploy` left running, environment by environment.

A deploy leaves per environment an app service, a proxy (service or container), its network, the
secrets it created from variables and the volume its replicas write feedback to (kept unless asked:
users' ratings exist nowhere else until `env feedback` exports them); `pipeline` leaves all three
environments so, with ports open, and swarm mode on. Down removes them (proxy first, so no client reaches an app being removed), optionally
the images they ran and swarm mode itself. It is idempotent: what is already gone is not mentioned, and a
second run says nothing is left. Kubernetes environments are the cluster's business: down says so and
gives the kubectl command rather than pretend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docs_assistant.deploy import swarm
from docs_assistant.deploy.environments import (
    ENVIRONMENTS_DIR,
    Environment,
    in_promotion_order,
    load_environment,
    load_environments,
)
from docs_assistant.errors import ConfigError, DeployError


@dataclass
class DownResult:
    """What `env down` did, as the lines it prints (one per removed or kept object)."""

    lines: list[str] = field(default_factory=list)
    removed: int = 0


def kubernetes_hint(env: Environment) -> str:
    return f"`kubectl delete -k deploy/kubernetes/overlays/{env.name}` (see docs/promotion/kubernetes.md)"


def _selected(name: str | None, every: bool, directory: Path) -> tuple[list[Environment], bool]:
    """The environments to take down (last of the promotion chain first) and whether the user named one."""
    if name is not None and every:
        raise ConfigError("give an environment or --all, not both", where=f"argument {name!r}")
    if name is None and not every:
        raise ConfigError(
            "which environment? name one, or pass --all for every file in the folder", where=str(directory)
        )
    if name is not None:
        return [load_environment(name, directory)], True
    environments = load_environments(directory)
    return [environments[n] for n in reversed(in_promotion_order(environments))], False


def _refuse_worker(client: Any, env: Environment, directory: Path) -> None:
    """A swarm worker sees no services or secrets: removing nothing there must not read as "nothing left"."""
    state = client.info().get("Swarm", {})
    if state.get("LocalNodeState") == "active" and not state.get("ControlAvailable"):
        raise DeployError(
            "the engine is a swarm worker; services and secrets are removed on a manager",
            where=f"{swarm.env_file(env, directory)}: docker_host",
            hint="point docker_host (or DOCKER_HOST) at a manager node",
        )


def run_down(
    name: str | None,
    *,
    every: bool = False,
    images: bool = False,
    leave_swarm: bool = False,
    feedback: bool = False,
    directory: Path = ENVIRONMENTS_DIR,
    client: Any | None = None,
) -> DownResult:
    """Remove the named environment (or, with `every`, each one in `directory`) from its Docker engine.

    Images go after every environment's services, since environments promoted by digest share one image;
    swarm mode is left last, and only where nothing else lives in the swarm. `client` replaces the engine of
    each environment (tests); by default each one's `docker_host` (or DOCKER_HOST) is used.
    """
    selected, named = _selected(name, every, directory)
    result = DownResult()
    engines: dict[str | None, Any] = {}
    found_images: dict[str | None, tuple[list[str], list[str]]] = {}
    for env in selected:
        if env.target != "docker":
            if named:
                raise DeployError(
                    f"target: {env.target!r}; env down removes Docker swarm environments only",
                    where=swarm.env_file(env, directory),
                    hint=f"delete it from the cluster: {kubernetes_hint(env)}",
                )
            result.lines.append(f"env {env.name}: target {env.target}, not removed here: {kubernetes_hint(env)}")
            continue
        key = env.docker_host
        if key not in engines:
            engines[key] = client or swarm.client_for(env)
            _refuse_worker(engines[key], env, directory)
        engine = engines[key]
        if images:
            apps, proxies = swarm.images_of(engine, env)
            known = found_images.setdefault(key, ([], []))
            known[0].extend(apps)
            known[1].extend(proxies)
        done = swarm.remove(env, client=engine, feedback=feedback)
        result.lines.extend(f"env {env.name}: {item.line()}" for item in done)
        removed = sum(item.action == "removed" for item in done)
        result.removed += removed
        if not removed:
            result.lines.append(f"env {env.name}: nothing left to remove (no service, proxy, secret or network of it)")
    for key, (apps, proxies) in found_images.items():
        done = swarm.remove_images(engines[key], apps, proxies)
        result.lines.extend(item.line() for item in done)
        result.removed += sum(item.action != "kept" for item in done)
    if leave_swarm:
        if not engines:
            result.lines.append("swarm: no Docker environment selected, swarm mode left as it is")
        for engine in engines.values():
            result.lines.append(swarm.leave_swarm(engine))
    return result
