"""Bad eval input fails early with the file, line and field named; the committed suites file loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs_assistant.errors import DataError
from docs_assistant.evals.config import load_dataset, load_eval_config
from docs_assistant.evals.metrics import METRICS, facts_contained, groundedness, token_f1

from ..conftest import REPO  # noqa: TID252 - the repository root


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "data.jsonl").write_text('{"id": "a", "question": "q?", "doc_ids": ["d"]}\n', encoding="utf-8")
    path = tmp_path / "suites.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """[run]
variants = ["rag-answer@1"]

[suites.retrieval]
datasets = ["data.jsonl"]

[suites.retrieval.metrics]
mrr = { threshold = 0.5 }
"""


def test_the_committed_suites_file_loads_and_every_threshold_can_fail() -> None:
    config = load_eval_config(REPO / "evals" / "suites.toml")
    assert set(config.suites) == {"retrieval", "answers", "likelihood", "safety", "cost"}
    for suite in config.suites.values():
        for spec in suite.metrics.values():
            if spec.threshold is None:
                assert spec.regression, spec.name
            elif spec.higher_is_better:  # a lower bound of 0 on a [0, 1] score can never fail
                assert spec.threshold > 0, spec.name
    assert len(load_dataset(REPO / "evals" / "datasets" / "safety.jsonl", "safety")) >= 30


def test_unknown_metric_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("mrr =", "precision =").replace("[run]", "# top\n[run]"))
    with pytest.raises(DataError) as err:
        load_eval_config(path)
    assert err.value.where == f"{path}:9"
    assert "field 'suites.retrieval.metrics.precision'" in str(err.value)
    assert "known: hit_at_k" in str(err.value)


def test_missing_dataset_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("data.jsonl", "gone.jsonl"))
    with pytest.raises(DataError, match=r"suites.toml:5: field 'suites.retrieval.datasets': dataset not found: .*gone"):
        load_eval_config(path)


def test_threshold_must_be_a_number(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("0.5", '"high"'))
    with pytest.raises(DataError, match=r":8: field 'suites.retrieval.metrics.mrr.threshold': must be a number"):
        load_eval_config(path)


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"suites.toml:2: not valid TOML"):
        load_eval_config(write(tmp_path, "[run]\nvariants = ]\n"))


def test_dataset_rows_are_checked_by_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text('{"id": "a", "question": "q", "doc_ids": []}\n\n{"id": "b", "question": ""}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"qa.jsonl:3: field 'question': must be a non-empty str"):
        load_dataset(path, "retrieval")
    path.write_text('{"id": "a", "question": "q", "doc_ids": []}\n{"id": "a", "question": "q", "doc_ids": []}\n')
    with pytest.raises(DataError, match=r"qa.jsonl:2: field 'id': duplicate id, first on line 1"):
        load_dataset(path, "retrieval")


def test_scorers() -> None:
    assert token_f1("the relay retries 12 times", "12 attempts, the relay retries") == pytest.approx(0.8)
    assert facts_contained("Use HR-1002 and strict_config = false", ["HR-1002", "strict_config = false", "x"]) == 2 / 3
    assert groundedness("port 8080", "listens on port 8080") == 1.0
    assert groundedness("", "ctx") == 0.0
    assert all(m.suite for m in METRICS.values())
