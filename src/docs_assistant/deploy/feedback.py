"""`docs-assistant env feedback ENV`: copy the ratings a deployed environment collected into data/feedback/.

In the image the service appends feedback to /app/feedback (serve/feedback_log.py), where the deploy mounts
the environment's volume, a file per replica. This copies the volume's files out through a container that
is created, never started, from the image the environment runs (or, after `env down`, any image of ours or
`--image`): the engine reads a stopped container's volumes for a copy. Each is written as
`<out>/<env>-<file>`. The volume lives on the engine's node: on a multi-node swarm, each node that ran a
replica holds its own. The next `validate` ingests the rows it has not seen (by id) and `finetune` trains
on the liked and corrected ones. The files only grow, so a later export replaces each copy with a longer
one; nothing is removed from the volume.
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


def _archive(client: Any, image: str, volume: str, where: Path) -> bytes:
    """The tar of the feedback directory, read through a created, never started container of `image`."""
    from docker.errors import DockerException

    try:
        container = client.containers.create(
            image, volumes={volume: {"bind": IMAGE_DIR, "mode": "ro"}}, network_disabled=True, entrypoint=["true"]
        )
        try:
            stream, _ = container.get_archive(IMAGE_DIR)  # members: feedback/<file>
            return b"".join(stream)
        finally:
            container.remove(force=True)
    except DockerException as err:
        raise DeployError(
            f"could not read the feedback volume {volume} through {image}: {err}",
            where=where,
            hint="pass --image with an image this engine holds (any: the container is never started)",
        ) from err


def _reader_image(client: Any, env: Environment, where: Path) -> str:
    """An image to create the reading container from: the app's, else any of ours on this engine."""
    service = swarm.app_service(client, env)
    if service is not None:
        return swarm.image_of(service)
    ours = [image for image in client.images.list() if swarm.is_ours(image) and image.tags]
    if ours:
        return ours[0].tags[0]
    raise DeployError(
        f"{env.name} runs no app service and this engine holds no image of ours to read its feedback volume through",
        where=where,
        hint="pass --image with any image this engine holds (the container is created, never started)",
    )


def export_feedback(
    env: Environment,
    out: Path,
    *,
    image: str | None = None,
    client: Any | None = None,
    directory: Path = ENVIRONMENTS_DIR,
) -> list[Exported]:
    """Write each feedback file of the environment's volume to `out` (atomically); returns what was written.

    A line still being appended (no newline yet) is left for the next export: validate would quarantine it."""
    from docker.errors import NotFound

    swarm.check_target(env, directory)
    client = client or swarm.client_for(env)
    volume = swarm.feedback_volume(env)
    where = swarm.env_file(env, directory)
    try:
        client.volumes.get(volume)
    except NotFound:
        raise DeployError(
            f"no feedback volume {volume} on this engine: {env.name} has not been deployed here",
            where=where,
            hint=f"deploy it (`docs-assistant deploy {env.name}`); its service then collects feedback",
        ) from None
    reader = image or _reader_image(client, env, where)
    exported = []
    with tarfile.open(fileobj=io.BytesIO(_archive(client, reader, volume, where))) as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            # the files the service writes: top level, regular, .jsonl (never a path that leaves `out`)
            if not member.isfile() or name.suffix != ".jsonl" or name.parent != FOLDER:
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            data = source.read()
            data = data[: data.rfind(b"\n") + 1]
            path = out / f"{env.name}-{name.name}"
            atomic_write_bytes(path, data, mode=0o640)  # what users typed: as private as on the volume
            exported.append(Exported(path, sum(1 for line in data.splitlines() if line.strip())))
    return sorted(exported, key=lambda item: item.path)
