"""The validate stage on real LanceDB: each bad input fails the gate with file, line and field, leaves the
feature tables at their versions, and lands in the quarantine table; rows in = valid + quarantined."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docs_assistant.cli import app
from docs_assistant.data.store import FEATURE_TABLES, QUARANTINE, FeatureStore
from docs_assistant.data.validate import run_validation, summary_of

pytestmark = pytest.mark.integration
GATE_FAILED = 1


def cli(project, *args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(app, ["validate", *args], env=project.env() | (env or {}))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def feature_versions(project) -> dict[str, int]:
    store = FeatureStore(project.settings().paths.store_uri)
    return {name: store.open(name).version for name in FEATURE_TABLES if store.has_table(name)}


def quarantine(project) -> list[dict]:
    store = FeatureStore(project.settings().paths.store_uri)
    return store.read(QUARANTINE).to_pylist() if store.has_table(QUARANTINE) else []


def append(path: Path, line: str | bytes) -> int:
    """Add one line; returns its line number."""
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        data += b"\n"
    path.write_bytes(data + (line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n")
    return data.count(b"\n") + 1


def qa_line(**fields) -> str:
    row = {"id": "qa-planted", "question": "How is a planted row found?", "answer": "By validation.", "doc_ids": []}
    return json.dumps({k: v for k, v in (row | fields).items() if v is not ...})


def first_doc(project) -> str:
    return sorted(p.stem for p in (project.data / "docs").glob("*.md"))[0]


def first_line(project, split: str = "train") -> dict:
    return json.loads((project.data / "qa" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[0])


# Each planter changes a clean copy of data/ and returns (file, line, field, check) of the row to quarantine.
def truncated_jsonl(p):
    line = append(p.data / "qa" / "train.jsonl", '{"id": "qa-cut", "question": "What happens to a trunc')
    return "data/qa/train.jsonl", line, "question", "json"


def wrong_type(p):
    line = append(p.data / "qa" / "train.jsonl", qa_line(question=42, doc_ids=[first_doc(p)]))
    return "data/qa/train.jsonl", line, "question", "is_text"


def missing_field(p):
    line = append(p.data / "qa" / "train.jsonl", qa_line(answer=..., doc_ids=[first_doc(p)]))
    return "data/qa/train.jsonl", line, "answer", "not_nullable"


def extra_field(p):
    line = append(p.data / "qa" / "train.jsonl", qa_line(notes="not in the contract", doc_ids=[first_doc(p)]))
    return "data/qa/train.jsonl", line, "notes", "no_extra_fields"


def duplicate_qa_id(p):
    line = append(p.data / "qa" / "eval.jsonl", qa_line(id=first_line(p)["id"], doc_ids=[first_doc(p)]))
    return "data/qa/eval.jsonl", line, "id", "unique_id"


def duplicate_doc_id(p):
    doc = first_doc(p)
    (p.data / "docs" / "zz-copy.md").write_text(
        p.doc(doc).read_text(encoding="utf-8") + "\nA different closing line.\n", encoding="utf-8"
    )
    return "data/docs/zz-copy.md", 2, "id", "unique_id"


def missing_doc(p):
    line = append(p.data / "qa" / "train.jsonl", qa_line(doc_ids=["no-such-page"]))
    return "data/qa/train.jsonl", line, "doc_ids", "cited_docs_exist"


def both_splits(p):
    train = first_line(p)
    line = append(p.data / "qa" / "eval.jsonl", qa_line(question=train["question"].upper(), doc_ids=train["doc_ids"]))
    return "data/qa/eval.jsonl", line, "question", "question_in_both_splits"


def non_utf8(p):
    path = p.doc(first_doc(p))
    lines = path.read_bytes().split(b"\n")
    lines[7] = lines[7] + b" caf\xe9"
    path.write_bytes(b"\n".join(lines))
    return f"data/docs/{path.name}", 8, "text", "utf8"


def huge_document(p):
    body = ("Harbor Relay keeps every message. " * 32 + "\n") * 48_000
    (p.data / "docs" / "zz-huge.md").write_text(
        f"---\nid: zz-huge\ntitle: Huge\nsource: docs/huge.md\n---\n{body}", encoding="utf-8"
    )
    assert (p.data / "docs" / "zz-huge.md").stat().st_size > 50_000_000
    return "data/docs/zz-huge.md", 1, "text", "max_bytes"


def nan_embedding(p):
    (p.data / "embeddings").mkdir()
    row = {"doc_id": first_doc(p), "vector": [math.nan, 0.0, 1.0]}
    path = p.data / "embeddings" / "vectors.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")  # json writes NaN, as numpy exports do
    return "data/embeddings/vectors.jsonl", 1, "vector", "vector_finite"


BAD_INPUTS = [
    truncated_jsonl,
    wrong_type,
    missing_field,
    extra_field,
    duplicate_qa_id,
    duplicate_doc_id,
    missing_doc,
    both_splits,
    non_utf8,
    huge_document,
    nan_embedding,
]


@pytest.fixture
def validated(project):
    """The small project, validated and ingested once (so there are table versions to keep)."""
    result = run_validation(project.settings())
    assert result.passed, summary_of(result)
    return project


@pytest.mark.parametrize("plant", BAD_INPUTS, ids=lambda f: f.__name__)
def test_bad_input_fails_names_file_line_field_and_is_quarantined(validated, plant) -> None:
    project = validated
    before = feature_versions(project)
    file, line, field, check = plant(project)

    result = cli(project)

    assert result.exit_code == GATE_FAILED, result.output
    assert f"{file}:{line}: field '{field}':" in result.output
    assert "gate failed" in result.output
    assert "nothing was ingested" in result.output
    assert feature_versions(project) == before
    rows = quarantine(project)
    found = [(r["file"], r["line"], r["field"], r["check"]) for r in rows]
    assert found[0] == (file, line, field, check)
    # a quarantined page takes the QA pairs citing it along: they would cite nothing
    assert {c for *_, c in found[1:]} <= {"cited_docs_exist"}
    summary = json.loads((project.root / "reports" / "validate_data" / "summary.json").read_text(encoding="utf-8"))
    assert summary["passed"] is False
    assert summary["ingested"] is False
    assert summary["rows_balance"] is True
    assert summary["counts"]["total"]["quarantined"] == len(rows)
    failing = [c for c in summary["checks"] if c["failures"]]
    assert failing[0]["first_failures"][0] | {"message": ""} == {
        "kind": rows[0]["kind"],
        "check": check,
        "file": file,
        "line": line,
        "field": field,
        "message": "",
        "quarantines": True,
    }
    markdown = (project.root / "reports" / "validate_data" / "summary.md").read_text(encoding="utf-8")
    assert f"{file}:{line}" in markdown


def test_empty_data_directory_fails_with_a_clear_message(validated) -> None:
    project = validated
    before = feature_versions(project)
    for path in sorted(project.data.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()

    result = cli(project)

    assert result.exit_code == GATE_FAILED
    assert "data directory is empty" in result.output
    assert str(project.data) in result.output
    assert feature_versions(project) == before


def test_rows_in_equal_valid_plus_quarantined_and_a_raised_threshold_ingests_the_valid_rows(validated) -> None:
    project = validated
    for plant in (truncated_jsonl, wrong_type, missing_doc, duplicate_doc_id, non_utf8):
        plant(project)
    docs_in = len(list((project.data / "docs").glob("*.md")))

    strict = run_validation(project.settings())
    lenient = run_validation(project.settings(validation={"max_invalid_share": 0.5}))

    for result in (strict, lenient):
        counts = result.counts
        for kind in (*counts.keys(),):
            assert counts[kind]["in"] == counts[kind]["valid"] + counts[kind]["quarantined"], kind
        assert counts["documents"]["in"] == docs_in
        assert counts["total"]["quarantined"] >= 4  # the copy stands in for the undecodable page
    assert not strict.passed
    assert lenient.passed
    assert lenient.ingested
    store = FeatureStore(project.settings().paths.store_uri)
    assert store.open("documents").count_rows() == lenient.counts["documents"]["valid"]
    assert store.open("qa").count_rows() == lenient.counts["qa"]["valid"]
    assert len({r["run_id"] for r in quarantine(project)}) == 2


def quality_planters(p):
    doc = first_doc(p)
    text = p.doc(doc).read_text(encoding="utf-8")
    body = text.split("\n---\n", 1)[1]

    def page(name: str, content: str, extra: str = "") -> None:
        (p.data / "docs" / f"{name}.md").write_text(
            f"---\nid: {name}\ntitle: {name}\nsource: docs/{name}.md\n{extra}---\n{content}", encoding="utf-8"
        )

    return {
        "duplicate_content": lambda: page("zz-dup", body.upper()),
        "near_duplicate": lambda: page("zz-near", body.replace(".", "!", 2) + "\nOne more sentence here.\n"),
        "encoding": lambda: page("zz-mojibake", body + "\nThe cafÃ© endpoint.\n"),
        "language": lambda: page("zz-greek", "Αυτή η σελίδα είναι γραμμένη στα ελληνικά και όχι στα αγγλικά. " * 5),
        "pii": lambda: page("zz-pii", body + "\nWrite to jane.doe@gmail.com for access.\n"),
        "stale": lambda: page(
            "zz-stale", "An old page about the first release of the relay service. " * 3, "updated: 2001-01-01\n"
        ),
    }


@pytest.mark.parametrize("check", ["duplicate_content", "near_duplicate", "encoding", "language", "pii", "stale"])
def test_each_quality_check_fails_the_gate(validated, check) -> None:
    project = validated
    before = feature_versions(project)
    quality_planters(project)[check]()

    result = run_validation(project.settings(validation={"max_stale_share": 0.0}))

    assert not result.passed
    failing = {key for key, c in result.checks.items() if not c.passed or (c.quarantines and c.failures)}
    assert failing == {f"documents.{check}"}
    failure = result.checks[f"documents.{check}"].failures[0]
    assert failure.file == f"data/docs/zz-{failure.file.split('zz-')[1]}"
    assert failure.field == "text"
    assert feature_versions(project) == before


def test_a_check_within_its_threshold_passes(validated) -> None:
    project = validated
    quality_planters(project)["stale"]()
    result = run_validation(project.settings(validation={"max_stale_share": 0.5}))
    assert result.passed
    assert len(result.checks["documents.stale"].failures) == 1
    assert result.counts["total"]["quarantined"] == 0


def test_bad_feedback_rows_are_quarantined_and_good_ones_appended(validated) -> None:
    project = validated
    (project.data / "feedback").mkdir()
    good = {
        "id": "fb-1",
        "answer_id": "ans-" + "a" * 32,
        "rating": 1,
        "correction": None,
        "created_at": "2026-01-02T03:04:05+00:00",
    }
    bad = good | {"id": "fb-2", "rating": 5}
    no_text = good | {"id": "fb-3", "question": ["not", "text"], "answer": "A."}  # the rated question must be text
    (project.data / "feedback" / "export.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in (good, bad, no_text)), encoding="utf-8"
    )

    failed = run_validation(project.settings())
    assert not failed.passed
    assert [(f.file, f.line, f.field, f.check) for f in failed.failures()] == [
        ("data/feedback/export.jsonl", 2, "rating", "rating_range"),
        ("data/feedback/export.jsonl", 3, "question", "optional_text"),
    ]
    passed = run_validation(project.settings(validation={"max_invalid_share": 0.5}))
    assert passed.passed
    assert FeatureStore(project.settings().paths.store_uri).open("feedback").count_rows() == 1


def test_cleaning_happens_before_validation_and_is_what_gets_ingested(validated) -> None:
    project = validated
    path = project.doc(first_doc(project))
    text = path.read_text(encoding="utf-8")
    head, body = text.split("\n---\n", 1)
    decomposed = "Cafe\u0301 note.   \n\n\n\n<!-- editor: remove me -->\nEdit this page on GitHub\n"
    path.write_text(f"{head}\n---\n{body}\n{decomposed}", encoding="utf-8")

    result = run_validation(project.settings())

    assert result.passed
    stored = FeatureStore(project.settings().paths.store_uri).read("documents").to_pylist()
    page = next(r for r in stored if r["path"].endswith(path.name))
    assert "Café note." in page["text"]
    assert "\u0301" not in page["text"]
    assert "remove me" not in page["text"]
    assert "Edit this page" not in page["text"]
    assert "\n\n\n" not in page["text"]


def test_thresholds_option_overrides_settings_and_bad_json_is_named(validated) -> None:
    project = validated
    truncated_jsonl(project)
    assert cli(project).exit_code == GATE_FAILED
    assert cli(project, "--thresholds", '{"max_invalid_share": 0.5}').exit_code == 0
    bad = cli(project, "--thresholds", '{"max_invalid_share": 0.5')
    assert bad.exit_code == 2
    assert "--thresholds: not JSON" in bad.output
    unknown = cli(project, "--thresholds", '{"max_invalid_shares": 0.5}')
    assert unknown.exit_code == 2
    assert "validation.max_invalid_shares" in unknown.output


def test_own_embeddings_covering_every_page_decide_near_duplicates(validated) -> None:
    project = validated
    ids = sorted(p.stem for p in (project.data / "docs").glob("*.md"))
    (project.data / "embeddings").mkdir()
    rows = []
    for i, doc_id in enumerate(ids):
        vector = [0.0] * len(ids)
        vector[min(i, len(ids) - 2)] = 1.0  # the last two pages share a vector
        rows.append(json.dumps({"doc_id": doc_id, "vector": vector}))
    (project.data / "embeddings" / "vectors.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")

    result = run_validation(project.settings())

    assert not result.passed
    flagged = result.checks["documents.near_duplicate"].failures
    assert [f.file for f in flagged] == [f"data/docs/{ids[-1]}.md"]
    assert "cosine 1.000" in flagged[0].message


def test_a_bad_boilerplate_pattern_is_a_settings_error(project) -> None:
    result = cli(project, env={"DOCS_ASSISTANT_VALIDATION__BOILERPLATE_PATTERNS": '["(unclosed"]'})
    assert result.exit_code == 2
    assert "validation.boilerplate_patterns" in result.output
    assert "invalid regular expression" in result.output
