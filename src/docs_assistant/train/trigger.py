"""Is a retrain due? Feedback training would use, against the rows the champion was trained on.

`docs-assistant registry retrain-due` prints this; the scheduled run of `train.yml` fine-tunes only when
`due` is true. Nothing is written: a missing store or registry counts as empty.
"""

from __future__ import annotations

from typing import Any

from docs_assistant.config import Settings
from docs_assistant.train.data import FEEDBACK_ROWS_TAG


def usable_rows(settings: Settings) -> int:
    """Feedback rows fine-tuning would train on: usable ones (`usable_feedback`) not on a held-out question.

    The same count as the `feedback_rows` tag a registered version carries (`train.data.build_training_data`).
    """
    from docs_assistant.data.store import FEEDBACK, QA, FeatureStore
    from docs_assistant.train.data import split_held_out, usable_feedback

    uri = settings.paths.store_uri
    if not settings.finetune.use_feedback or not uri.is_dir():  # connecting would create the directory
        return 0
    store = FeatureStore(uri)
    if not store.has_table(FEEDBACK):
        return 0
    held_out: list[str] = []
    if store.has_table(QA):
        held_out = [r["question"] for r in store.read(QA, ["split", "question"]).to_pylist() if r["split"] == "eval"]
    used, _leaking = split_held_out(usable_feedback(store.read(FEEDBACK).to_pylist()), held_out)
    return len(used)


def trained_rows(settings: Settings) -> int:
    """The `feedback_rows` tag of the registry's champion version; 0 without a registry or a champion."""
    from docs_assistant.errors import RegistryError
    from docs_assistant.registry import CHAMPION, ModelRegistry

    champion = ModelRegistry(settings).get(CHAMPION)
    if champion is None:
        return 0
    raw = champion.tags.get(FEEDBACK_ROWS_TAG, "0")
    try:
        return int(raw)
    except ValueError:
        raise RegistryError(
            f"champion v{champion.version} has tag {FEEDBACK_ROWS_TAG}={raw!r}, not a row count",
            where=f"registered model '{settings.registry.model_name}'",
            hint="set the tag to an integer, or promote another version",
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
