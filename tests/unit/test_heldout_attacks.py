"""The frozen held-out attack set against the input screen, and the eval gate that holds the result.

The set (evals/safety/heldout_attacks.jsonl) was committed before the screen's rules were tuned and was
never used to tune them, so its block rate measures how well the rules generalise to unseen phrasings.
The gate's bounds are read from the committed suites file, so these tests check what CI enforces.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from docs_assistant.config import GuardrailSettings
from docs_assistant.errors import DataError
from docs_assistant.evals.config import load_dataset, load_eval_config
from docs_assistant.evals.gate import evaluate_gate
from docs_assistant.evals.runner import EvalRun, VariantResult, _aggregate
from docs_assistant.evals.screen import sample_questions, screen_cases
from docs_assistant.rag.guardrails import Guardrails

from ..conftest import REPO  # noqa: TID252 - the repository root

HELDOUT = REPO / "evals" / "safety" / "heldout_attacks.jsonl"
CONFIG = load_eval_config(REPO / "evals" / "suites.toml")
SAFETY = CONFIG.suites["safety"]


def scores(guardrails: Guardrails, attacks: list[dict], questions: list[dict]) -> tuple[dict[str, float], list]:
    cases = screen_cases(guardrails, attacks, questions)
    return _aggregate(SAFETY, cases), cases


def gate(metrics: dict[str, float], cases: list) -> list:
    """The committed gate on a run that has only the screen's metrics."""
    result = VariantResult("rag-answer@1", {}, {"safety": metrics}, {"safety": cases})
    run = EvalRun({"rag-answer@1": result}, model={}, index_version=0, cache={}, seconds=0.0)
    return evaluate_gate(run, CONFIG, baseline=None)


@pytest.fixture(scope="module")
def attacks() -> list[dict]:
    return load_dataset(HELDOUT, "heldout")


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return sample_questions(REPO / "data")


def test_the_heldout_set_is_broad_and_the_suite_uses_it(attacks) -> None:
    """At least 60 phrasings across the attack kinds of issue 19 and several languages."""
    assert len(attacks) >= 60
    kinds = Counter(row["category"] for row in attacks)
    assert set(kinds) >= {"ignore", "extraction", "role", "developer_mode", "template", "encoded", "unicode"}
    assert len({row["language"] for row in attacks}) >= 4
    assert Path(SAFETY.options["heldout"]).resolve() == HELDOUT.resolve()
    tuned = {json.loads(x)["prompt"] for x in (HELDOUT.parent / "tuning_attacks.jsonl").read_text("utf-8").splitlines()}
    assert not tuned & {row["prompt"] for row in attacks}, "the held-out set must not overlap the tuning set"


def test_the_sample_questions_are_the_106_of_data_qa(questions) -> None:
    files = sorted((REPO / "data" / "qa").glob("*.jsonl"))
    expected = sum(1 for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip())
    assert len(questions) == expected >= 100


def test_heldout_block_rate_and_false_positives_meet_the_committed_gate(attacks, questions) -> None:
    """What CI gates on: the block rate at or above its threshold, no sample question refused."""
    metrics, cases = scores(Guardrails(GuardrailSettings()), attacks, questions)
    missed = [c["prompt"] for c in cases if c["scores"].get("heldout_block_rate") == 0.0]
    refused = [c["prompt"] for c in cases if c["scores"].get("false_positive_rate") == 1.0]
    assert metrics["heldout_block_rate"] >= SAFETY.metrics["heldout_block_rate"].threshold, missed
    assert refused == []
    assert gate(metrics, cases) == []


def test_a_screen_that_blocks_nothing_fails_the_gate(attacks, questions) -> None:
    metrics, cases = scores(Guardrails(GuardrailSettings(screen_input=False)), attacks, questions)
    failures = gate(metrics, cases)
    assert [(f.metric, f.kind) for f in failures] == [("heldout_block_rate", "threshold")]
    assert failures[0].value == 0.0
    assert "safety.heldout_block_rate = 0.0000 breaks threshold 0.9500" in failures[0].message


def test_unblockable_phrasings_fail_the_gate(attacks, questions) -> None:
    """Replace enough held-out rows with phrasings no rule can tell from a question, and the rate drops below."""
    plain = [{"id": f"plain-{i}", "category": "ignore", "prompt": "What does the retry policy do?"} for i in range(5)]
    metrics, cases = scores(Guardrails(GuardrailSettings()), attacks[5:] + plain, questions)
    failures = gate(metrics, cases)
    assert [f.metric for f in failures] == ["heldout_block_rate"]
    assert ("plain-0", 0.0) in failures[0].worst


def test_a_screen_that_refuses_a_sample_question_fails_the_gate(attacks, questions) -> None:
    """One over-eager rule (any question mentioning a webhook) is enough: the bound is zero refusals."""
    greedy = Guardrails(GuardrailSettings(extra_injection_patterns=[r"\bwebhooks?\b"]))
    metrics, cases = scores(greedy, attacks, questions)
    failures = gate(metrics, cases)
    assert [f.metric for f in failures] == ["false_positive_rate"]
    assert failures[0].value > 0
    assert failures[0].worst[0][1] == 1.0


def test_a_missing_heldout_file_names_the_setting(tmp_path: Path) -> None:
    text = (REPO / "evals" / "suites.toml").read_text(encoding="utf-8")
    path = tmp_path / "suites.toml"
    path.write_text(text.replace("evals/safety/heldout_attacks.jsonl", "evals/safety/gone.jsonl"), encoding="utf-8")
    (tmp_path / "datasets").symlink_to(REPO / "evals" / "datasets")
    with pytest.raises(DataError, match=r"field 'suites\.safety\.heldout': held-out attack set not found"):
        load_eval_config(path)
