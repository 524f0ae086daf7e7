"""Where the registry lives and how MLflow is reached: embedded SQLite by default, a server by URI.

`import mlflow` costs seconds, so it happens here, on first use only: the service imports it only when
`model.adapter_alias` asks for a registered adapter.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docs_assistant.config import Settings

URI_SETTING = "setting 'registry.tracking_uri' (env DOCS_ASSISTANT_REGISTRY__TRACKING_URI, else MLFLOW_TRACKING_URI)"
#: MLflow's own defaults phone home (telemetry), draw progress bars and write run links to stdout (where
#: they would corrupt a command's JSON); a user's explicit choice still wins
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}
#: what MLflow accepts in param, metric and tag names on every platform (no colon: Windows servers refuse it)
_NOT_A_NAME_CHAR = re.compile(r"[^\w./\- ]")


@dataclass(frozen=True)
class Backend:
    """The resolved locations: tracking (= registry) URI and the artifact root new experiments get."""

    tracking_uri: str
    artifact_location: str | None
    #: the SQLite file of the embedded default; None for a server or a user-given URI
    database: Path | None

    @property
    def embedded(self) -> bool:
        return self.database is not None


def backend_of(settings: Settings) -> Backend:
    """Defaults under `paths.state_dir`, as absolute URIs so a run logged here resolves from anywhere.

    Without `registry.tracking_uri`, MLflow's own `MLFLOW_TRACKING_URI` names the server: it is what the
    reusable `finetune.yml` sets from its `tracking-uri` secret, whatever the project's env prefix.
    """
    reg = settings.registry
    mlflow_dir = settings.paths.state_dir / "mlflow"
    artifact_dir = reg.artifact_dir
    uri = reg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    if uri is None:
        database = (mlflow_dir / "mlflow.db").resolve()
        artifacts = (artifact_dir or mlflow_dir / "artifacts").resolve()
        return Backend(f"sqlite:///{database.as_posix()}", artifacts.as_uri(), database)
    # a server decides its own artifact store (often proxied) unless the user names one
    location = artifact_dir.resolve().as_uri() if artifact_dir is not None else None
    return Backend(uri, location, None)


def mlflow_key(key: str) -> str:
    """`key` as MLflow accepts it in params, metrics and tags: other characters ('@', ':') become '_'."""
    return _NOT_A_NAME_CHAR.sub("_", key)


def client(backend: Backend) -> Any:
    """An `MlflowClient` for the tracking and model-registry store (the same URI), MLflow kept quiet."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    if backend.database is not None:
        backend.database.parent.mkdir(parents=True, exist_ok=True)
    from mlflow import MlflowClient

    # mlflow configures its loggers at import: if something imported it before us, apply the level now
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())
    return MlflowClient(tracking_uri=backend.tracking_uri, registry_uri=backend.tracking_uri)


def error_code(exc: BaseException) -> str | None:
    """MLflow's error code ('RESOURCE_DOES_NOT_EXIST', ...) of an MlflowException, else None."""
    return getattr(exc, "error_code", None)
