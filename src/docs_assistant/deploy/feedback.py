"""`docs-assistant env feedback ENV`: copy the ratings a deployed environment collected into data/feedback/.

In the image the service appends feedback to /app/feedback (serve/feedback_log.py), where the deploy mounts
the environment's volume, a file per replica. This copies the volume's files out through a container that
is created from the image the environment runs and never started (the engine reads a stopped container's
volumes for a copy), and writes each as `<out>/<env>-<file>`. The next `validate` ingests the rows it has
not seen (by id) and `finetune` trains on the liked and corrected ones. The files only grow, so a later
export replaces each copy with a longer one; nothing is removed from the volume.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from docs_assistant.deploy import swarm
from docs_assistant.deploy.environments import ENVIRONMENTS_DIR, Environment
from docs_assistant.errors import DeployError
from docs_assistant.io import atomic_write_bytes
from docs_assistant.serve.feedback_log import IMAGE_DIR

FOLDER = PurePosixPath(PurePosixPath(IMAGE_DIR).name)  # the archive's top folder


@dataclass(frozen=True)
class Exported:
    path: Path
    rows: int


def _archive(client: Any, image: str, volume: str) -> bytes:
    """The tar of the feedback directory, read through a created, never started container of `image`."""
    container = client.containers.create(
        image, volumes={volume: {"bind": IMAGE_DIR, "mode": "ro"}}, network_disabled=True, entrypoint=["true"]
    )
    try:
        stream, _ = container.get_archive(IMAGE_DIR)  # members: feedback/<file>
        return b"".join(stream)
    finally:
        container.remove(force=True)


def export_feedback(
    env: Environment, out: Path, *, client: Any | None = None, directory: Path = ENVIRONMENTS_DIR
) -> list[Exported]:
    """Write each feedback file of the environment's volume to `out` (atomically); returns what was written."""
    from docker.errors import NotFound

    swarm.check_target(env, directory)
    client = client or swarm.client_for(env)
    volume = swarm.feedback_volume(env)
    try:
        client.volumes.get(volume)
    except NotFound:
        raise DeployError(
            f"no feedback volume {volume} on this engine: {env.name} has not been deployed here",
            where=swarm.env_file(env, directory),
            hint=f"deploy it (`docs-assistant deploy {env.name}`); its service then collects feedback",
        ) from None
    service = swarm.app_service(client, env)
    if service is None:
        raise DeployError(
            f"{env.name} runs no app service to read its feedback volume {volume} through",
            where=swarm.env_file(env, directory),
            hint=f"deploy it again, or `docker run --rm -v {volume}:/feedback:ro IMAGE cat /feedback/*.jsonl`",
        )
    exported = []
    with tarfile.open(fileobj=io.BytesIO(_archive(client, swarm.image_of(service), volume))) as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            # the files the service writes: top level, regular, .jsonl (never a path that leaves `out`)
            if not member.isfile() or name.suffix != ".jsonl" or name.parent != FOLDER:
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            data = source.read()
            path = out / f"{env.name}-{name.name}"
            atomic_write_bytes(path, data)
            exported.append(Exported(path, sum(1 for line in data.splitlines() if line.strip())))
    return sorted(exported, key=lambda item: item.path)
