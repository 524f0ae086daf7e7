"""Training pairs from the real feature store: feedback joins the train split, held-out questions stay out,
and a row that breaks the data contracts stops training with its table, row and check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from docs_assistant.data.store import FEEDBACK, QA, SCHEMAS, FeatureStore
from docs_assistant.errors import DataError
from docs_assistant.rag.prompts import PromptRegistry
from docs_assistant.train.data import build_training_data, retrieval_renderer


def _feedback(store: FeatureStore, rows: list[dict[str, Any]]) -> None:
    full = [
        {"answer_id": "ans-" + "0" * 32, "correction": None, "created_at": datetime.now(UTC), "content_hash": r["id"]}
        | r
        for r in rows
    ]
    store.ensure_table(FEEDBACK, SCHEMAS[FEEDBACK])
    store.open(FEEDBACK).add(pa.Table.from_pylist(full, schema=SCHEMAS[FEEDBACK]))


def _build(settings: Any, embedder: Any):
    prompt = PromptRegistry.load(settings.paths.prompts_dir).get(settings.prompt.id, settings.prompt.version)
    store = FeatureStore(settings.paths.store_uri)
    return build_training_data(settings, retrieval_renderer(settings, prompt, embedder), prompt, store), store


def test_feedback_becomes_training_pairs_rendered_like_serving_and_held_out_questions_stay_out(
    indexed_project: Any, embedder: Any
) -> None:
    settings = indexed_project.settings()
    store = FeatureStore(settings.paths.store_uri)
    qa = store.read(QA).to_pylist()
    held_question = next(r["question"] for r in qa if r["split"] == "eval")
    _feedback(
        store,
        [
            {"id": "fb-liked", "rating": 1, "question": "How do I pause a channel?", "answer": "Run relay pause."},
            {
                "id": "fb-fixed",
                "rating": -1,
                "question": "Where are logs?",
                "answer": "No idea.",
                "correction": "In /var/log.",
            },
            {"id": "fb-disliked", "rating": -1, "question": "Why?", "answer": "Because."},
            {"id": "fb-leak", "rating": 1, "question": held_question.upper(), "answer": "The reference."},
        ],
    )
    data, _ = _build(settings, embedder)
    counts = data.counts
    assert counts["feedback_rows"] == 4
    assert counts["feedback_usable"] == 3
    assert counts["feedback_used"] == 2
    assert counts["feedback_on_heldout_questions"] == 1
    assert counts["qa_train"] == sum(1 for r in qa if r["split"] == "train")
    assert counts["qa_heldout"] == sum(1 for r in qa if r["split"] == "eval")
    by_id = {e.id: e for e in data.train}
    assert by_id["fb-fixed"].target == "In /var/log."
    assert by_id["fb-liked"].target == "Run relay pause."
    assert "fb-leak" not in by_id
    prompt = by_id["fb-liked"].prompt
    assert prompt.endswith("Question: How do I pause a channel?\nAnswer:")
    assert "[1] " in prompt  # the retrieved context, formatted as the pipeline formats it
    assert set(data.table_versions) == {"documents", "qa", "feedback"}


def test_a_row_that_breaks_the_contracts_stops_training_with_its_table_row_and_check(
    indexed_project: Any, embedder: Any
) -> None:
    settings = indexed_project.settings()
    store = FeatureStore(settings.paths.store_uri)
    table = store.open(QA)
    victim = table.to_arrow().to_pylist()[0]["id"]
    table.update(where=f"id = '{victim}'", values={"doc_ids": ["no-such-document"]})
    with pytest.raises(DataError) as caught:
        _build(settings, embedder)
    message = str(caught.value)
    assert "qa.lance" in message
    assert victim in message
    assert "cited_docs_exist" in message
    assert "doc_ids" in message


def test_training_prompts_are_fitted_to_the_input_budget_like_serving(indexed_project: Any, embedder: Any) -> None:
    """A small budget: every training prompt fits it and keeps its instructions and question (the service's
    context fitting), where a left cut would have dropped the instructions."""
    from transformers import AutoTokenizer

    from docs_assistant.rag.llm import resolve_model_path

    settings = indexed_project.settings(model={"max_input_tokens": 400})
    prompt = PromptRegistry.load(settings.paths.prompts_dir).get(settings.prompt.id, settings.prompt.version)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(settings.model, settings.paths.models_dir)[0])
    instructions = prompt.render(context="", question="").split("\n", 1)[0]
    data, _ = _build(settings, embedder)
    assert data.train
    for example in [*data.train, *data.heldout]:
        assert len(tokenizer(example.prompt).input_ids) <= 400, example.id
        assert example.prompt.startswith(instructions), example.id
        assert example.prompt.endswith(f"Question: {example.question}\nAnswer:"), example.id
