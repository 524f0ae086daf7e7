"""Is a retrain due? Usable feedback in the feature store, against the rows the champion was trained on.

`docs-assistant registry retrain-due` prints this; the scheduled run of `train.yml` fine-tunes only when
`due` is true. Nothing is written: a missing store or registry counts as empty.
"""

from __future__ import annotations

import os
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.errors import ConfigError

CHAMPION = "champion"
TRAINED_ROWS_TAG = "feedback_rows"


def _usable_feedback(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feedback that teaches something: a correction, or a liked (+1) answer; both need the question.

    The rule of `docs_assistant.train.data.usable_feedback`, which fine-tuning trains on.
    """
    usable = []
    for row in rows:
        if not (row.get("question") or "").strip():
            continue
        if (row.get("correction") or "").strip() or (row.get("rating") == 1 and (row.get("answer") or "").strip()):
            usable.append(row)
    return usable


def usable_rows(settings: Settings) -> int:
    from docs_assistant.data.store import FEEDBACK, FeatureStore

    uri = settings.paths.store_uri
    if not uri.is_dir():  # connecting would create it
        return 0
    store = FeatureStore(uri)
    if not store.has_table(FEEDBACK):
        return 0
    return len(_usable_feedback(store.read(FEEDBACK).to_pylist()))


def trained_rows(settings: Settings) -> int:
    """The `feedback_rows` tag of the registry's champion version; 0 without a registry or a champion.

    The registry is `registry.tracking_uri`, else MLflow's own `MLFLOW_TRACKING_URI` (what the reusable
    workflow sets from its `tracking-uri` secret), else the embedded SQLite database under `state_dir`.
    """
    uri = settings.registry.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        db = settings.paths.state_dir / "mlflow" / "mlflow.db"
        if not db.is_file():  # MlflowClient would create an empty registry
            return 0
        uri = f"sqlite:///{db.resolve()}"
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    where = f"setting 'registry.tracking_uri' ({uri})"
    try:
        version = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(
            settings.registry.model_name, CHAMPION
        )
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:  # no model, or no champion
            return 0
        raise ConfigError(f"cannot read the model registry: {exc.message}", where=where, hint="check the URI") from None
    raw = version.tags.get(TRAINED_ROWS_TAG, "0")
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"champion version {version.version} has tag {TRAINED_ROWS_TAG}={raw!r}, not a row count",
            where=f"registered model '{settings.registry.model_name}'",
            hint="set the tag to an integer or promote another version",
        ) from None


def retrain_due(settings: Settings) -> dict[str, Any]:
    """`due` when the usable feedback rows added since the champion's training reach `finetune.retrain_feedback_rows`."""
    usable, trained = usable_rows(settings), trained_rows(settings)
    threshold = settings.finetune.retrain_feedback_rows
    new = max(usable - trained, 0)
    return {
        "due": new >= threshold,
        "usable_rows": usable,
        "trained_rows": trained,
        "new_rows": new,
        "threshold": threshold,
    }
