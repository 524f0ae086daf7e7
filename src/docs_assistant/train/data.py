"""Training pairs: the QA train split plus liked and corrected answers from the feature store.

Each pair is rendered with the prompt template and the retrieval the service uses (same top-k, same
context format), so the model is trained on exactly the text it is asked at serving time. Rows are read
at pinned table versions and checked again with the data-validation contracts: a row that changed or went
bad after ingest stops training with its table, id and check, instead of being learned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.data.store import DOCUMENTS, FEEDBACK, QA, FeatureStore
from docs_assistant.errors import DataError
from docs_assistant.rag.prompts import Prompt

#: what a pair's question is rendered into; the retriever's chunks fill `context`
Render = Callable[[str], str]
#: run tag of a registered version: the feedback rows it was trained on (what `retrain-due` subtracts)
FEEDBACK_ROWS_TAG = "feedback_rows"


@dataclass(frozen=True)
class Example:
    id: str
    origin: str  # "qa" (a curated pair) or "feedback" (a liked or corrected answer)
    question: str
    prompt: str
    target: str


@dataclass(frozen=True)
class TrainingData:
    train: list[Example]
    heldout: list[Example]
    table_versions: dict[str, int]
    prompt: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def feedback_rows(self) -> int:
        return self.counts.get("feedback_used", 0)


def usable_feedback(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feedback that teaches something: a correction, or a liked (+1) answer; both need the question.

    A correction wins over the served answer whatever the rating: it is what the user said the answer
    should have been. Dislikes without a correction carry no target and are left out (and counted).
    """
    usable = []
    for row in rows:
        if not (row.get("question") or "").strip():
            continue
        correction = (row.get("correction") or "").strip()
        answer = (row.get("answer") or "").strip()
        if correction:
            usable.append(row | {"target": correction})
        elif row.get("rating") == 1 and answer:
            usable.append(row | {"target": answer})
    return usable


def _check(table: str, schema: Any, rows: list[dict[str, Any]], columns: tuple[str, ...], store: FeatureStore) -> None:
    """Re-apply the validate stage's pandera contract; the first failing row is the error."""
    import pandas as pd

    from docs_assistant.data.schemas import schema_failures

    if not rows:
        return
    frame = pd.DataFrame([[r.get(c) for c in columns] + [{}] for r in rows], columns=[*columns, "extra"], dtype=object)
    failures = schema_failures(schema, frame)
    if len(failures):
        first = failures.iloc[0]
        index = first["index"]
        try:  # a dataframe-wide check has no row index
            row_id = rows[int(index)]["id"]
        except (TypeError, ValueError, IndexError):
            row_id = "?"
        raise DataError(
            f"row {row_id!r} fails check '{first['check']}' ({len(failures)} failure(s) in all)",
            file=store.uri / f"{table}.lance",
            field=str(first["column"]),
            hint="run `docs-assistant validate` to quarantine bad rows before fine-tuning",
        )


def read_rows(settings: Settings, store: FeatureStore) -> tuple[list[dict], list[dict], dict[str, int]]:
    """QA pairs and feedback at the tables' current versions, validated; returns them with those versions."""
    from docs_assistant.data.readers import FEEDBACK_FIELDS
    from docs_assistant.data.schemas import feedback_schema, qa_schema

    versions = {name: store.open(name).version for name in (DOCUMENTS, QA)}
    doc_ids = set(store.read(DOCUMENTS, ["id"], version=versions[DOCUMENTS]).column("id").to_pylist())
    qa = store.read(QA, version=versions[QA]).to_pylist()
    _check(QA, qa_schema(settings.validation, doc_ids), qa, ("id", "split", "question", "answer", "doc_ids"), store)
    feedback: list[dict[str, Any]] = []
    if settings.finetune.use_feedback and store.has_table(FEEDBACK):
        versions[FEEDBACK] = store.open(FEEDBACK).version
        feedback = store.read(FEEDBACK, version=versions[FEEDBACK]).to_pylist()
        _check(FEEDBACK, feedback_schema(), feedback, FEEDBACK_FIELDS, store)
    return qa, feedback, versions


def build_training_data(settings: Settings, render: Render, prompt: Prompt, store: FeatureStore) -> TrainingData:
    """Train on the train split and usable feedback; hold out the eval split for the reference-answer loss."""
    qa, feedback, versions = read_rows(settings, store)
    train = [
        Example(r["id"], "qa", r["question"], render(r["question"]), r["answer"]) for r in qa if r["split"] == "train"
    ]
    heldout = [
        Example(r["id"], "qa", r["question"], render(r["question"]), r["answer"]) for r in qa if r["split"] == "eval"
    ]
    usable = usable_feedback(feedback)
    used, leaking = split_held_out(usable, [e.question for e in heldout])
    train += [Example(r["id"], "feedback", r["question"], render(r["question"]), r["target"]) for r in used]
    if not train:
        raise DataError(
            "no training pairs: the QA train split is empty and no feedback is usable",
            file=store.uri / f"{QA}.lance",
            hint="add pairs to data/qa/train.jsonl and run `docs-assistant validate`",
        )
    counts = {
        "qa_train": sum(1 for e in train if e.origin == "qa"),
        "qa_heldout": len(heldout),
        "feedback_rows": len(feedback),
        "feedback_usable": len(usable),
        "feedback_used": len(used),
        "feedback_on_heldout_questions": len(leaking),
    }
    return TrainingData(train, heldout, versions, prompt.ref, counts)


def _normalised(question: str) -> str:
    return " ".join(question.lower().split())


def split_held_out(usable: list[dict[str, Any]], held_out_questions: list[str]) -> tuple[list[dict], list[dict]]:
    """(used, leaking): feedback on a held-out question would leak its reference into training, so it is
    counted, not used. `used` is what the `feedback_rows` tag of a registered version counts."""
    held = {_normalised(q) for q in held_out_questions}
    used = [r for r in usable if _normalised(r["question"]) not in held]
    leaking = [r for r in usable if _normalised(r["question"]) in held]
    return used, leaking


def retrieval_renderer(settings: Settings, prompt: Prompt, embedder: Any = None) -> Render:
    """question → the prompt the service would send the model for it: the same retriever and context format,
    fitted to the same input budget (rag/context.py), so training reads the instructions and top-ranked
    chunks the service keeps, not a prompt cut from the left."""
    from transformers import AutoConfig, AutoTokenizer

    from docs_assistant.rag.context import fit_prompt
    from docs_assistant.rag.llm import input_budget, resolve_model_path
    from docs_assistant.rag.retriever import Retriever

    path, revision = resolve_model_path(settings.model, settings.paths.models_dir)
    tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=False)
    config = AutoConfig.from_pretrained(path, revision=revision, trust_remote_code=False)
    budget = input_budget(settings.model, config)
    retriever = Retriever(settings, embedder=embedder)

    def render(question: str) -> str:
        chunks, _timings = retriever.retrieve(question)
        return fit_prompt(prompt, question, chunks, tokenizer, budget).text

    return render
