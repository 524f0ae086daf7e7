"""The Docker Engine that the image stage builds on and the deploy stage deploys to.

Both stages reach it the same way (DOCKER_HOST, or the local socket), so one function connects and turns
"nothing listens" into one clear error that names the variable.
"""

from __future__ import annotations

from typing import Any

from docs_assistant.errors import EngineError


def docker_client() -> Any:
    """A client for the engine named by DOCKER_HOST (default: the local socket), with a clear error if none runs."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except DockerException as err:
        raise EngineError(
            f"no Docker Engine reachable: {err}",
            where="DOCKER_HOST",
            hint="start dockerd (or Docker Desktop), or point DOCKER_HOST at an engine",
        ) from err
    return client
