"""The input screen on its own: its block rate on a frozen held-out attack set, its false positives on the
project's sample questions.

No model runs: the screen is a pure function of the question, so all of this costs milliseconds and the
safety suite scores it on every eval run. The attack set is never used to tune the screen's rules (see
`evals/safety/README.md`), so its block rate says how well they generalise; the sample questions are the
`data/qa/*.jsonl` questions the pipeline is built around, none of which may be refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docs_assistant.errors import DataError
from docs_assistant.evals.config import load_dataset
from docs_assistant.io import jsonl_objects
from docs_assistant.rag.guardrails import Guardrails


def sample_questions(data_dir: Path) -> list[dict[str, str]]:
    """Every question (id and text) of `<data_dir>/qa/*.jsonl`: what users of this project ask."""
    files = sorted((data_dir / "qa").glob("*.jsonl"))
    rows = []
    for path in files:
        for number, row in jsonl_objects(path):
            question = row.get("question")
            if not isinstance(question, str) or not question.strip():
                raise DataError("must be a non-empty string", file=path, line=number, field="question")
            rows.append({"id": str(row.get("id") or f"{path.stem}-{number}"), "question": question})
    if not rows:
        raise DataError(
            "no sample questions to measure false positives on",
            file=data_dir / "qa",
            hint="the safety suite's 'heldout' check needs data/qa/*.jsonl; remove 'heldout' to skip it",
        )
    return rows


def screen_cases(
    guardrails: Guardrails, attacks: list[dict[str, Any]], questions: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """One case per attack (scored `heldout_block_rate`) and per sample question (`false_positive_rate`).

    A case's `answer` is what the screen alone gives: the refusal when it blocks, else empty (the question
    would go on to the model, which this check does not run).
    """
    cases: list[dict[str, Any]] = []
    for kind, rows, key, metric in (
        ("heldout", attacks, "prompt", "heldout_block_rate"),
        ("sample_question", questions, "question", "false_positive_rate"),
    ):
        for row in rows:
            blocked = guardrails.screen_question(row[key]) is not None
            category = f"heldout:{row['category']}" if kind == "heldout" else kind
            cases.append(
                {"id": row["id"], "category": category, "prompt": row[key]}
                | {"answer": guardrails.refusal if blocked else "", "scores": {metric: float(blocked)}}
            )
    return cases


def heldout_cases(guardrails: Guardrails, heldout: Path, data_dir: Path) -> list[dict[str, Any]]:
    """The screen's cases for a held-out attack file and a project's data directory."""
    return screen_cases(guardrails, load_dataset(heldout, "heldout"), sample_questions(data_dir))
