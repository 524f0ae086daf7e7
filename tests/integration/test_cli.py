"""The CLI as a user meets it: each bad input is one clear message, a non-zero exit, and intact state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docs_assistant.cli import FINETUNING, app
from docs_assistant.data.store import FeatureStore
from docs_assistant.rag.index import CHUNKS

pytestmark = pytest.mark.integration
USER_ERROR, GATE_FAILED = 2, 1


def run(project, *args: str, env: dict[str, str] | None = None, stdin: str | None = None):
    result = CliRunner().invoke(app, list(args), env=project.env() | (env or {}), input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def state(project) -> dict[str, int]:
    """Every table's version, after proving each one (and the index) is still readable."""
    store = FeatureStore(project.settings().paths.store_uri)
    for name in store.table_names():
        store.read(name)
    return store.versions()


def test_ingest_index_ask_answers_with_sources(project) -> None:
    assert run(project, "ingest").exit_code == 0
    indexed = run(project, "index")
    assert indexed.exit_code == 0, indexed.output
    assert "re-embedded" in indexed.output
    answered = run(project, "ask", "How do I install the relay on a Linux host?")
    assert answered.exit_code == 0, answered.output
    assert "A: " in answered.output
    assert "[1] " in answered.output
    assert "prompt rag-answer v1" in answered.output


def test_ask_json_and_stdin(indexed_project) -> None:
    result = run(indexed_project, "ask", "--json", "-", stdin="Which port does the API use?\n")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["question"] == "Which port does the API use?"
    assert len(answer["sources"]) == 5


@pytest.mark.parametrize(
    ("args", "table", "record"),
    [
        (["index"], "documents", "nox -s validate_data"),
        (["eval", "--suites", "safety"], CHUNKS, "nox -x -s validate_data index"),
        *([(["finetune"], CHUNKS, "nox -x -s validate_data index")] if FINETUNING else []),
        (["ask", "Which port does the API use?"], CHUNKS, "nox -x -s validate_data index"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_a_stage_without_its_upstream_record_names_the_sessions_that_make_it(project, args, table, record) -> None:
    """No nox session `requires` another, so a stage run alone on an empty store must say what to run first."""
    result = run(project, *args)
    assert result.exit_code == USER_ERROR, result.output
    message = " ".join(result.output.split())
    assert f"table '{table}' does not exist (run `{record}` first)" in message, message
    assert "Traceback" not in result.output
    assert state(project) == {}  # refused before writing anything


BAD_DOCS = {
    "malformed front matter": (
        "bad-yaml",
        "---\nid: bad-yaml\ntitle: [oops\nsource: docs/x.md\n---\nbody\n",
        ".md:4: malformed front matter",
    ),
    "document without id": ("no-id", "---\ntitle: T\nsource: docs/x.md\n---\nbody\n", "field 'id'"),
    "non-UTF-8 bytes": ("latin", b"---\nid: latin\ntitle: T\nsource: docs/x.md\n---\ncaf\xe9\n", "not valid UTF-8"),
    "duplicate id": ("copy", None, "duplicate id"),
}


@pytest.mark.parametrize("case", list(BAD_DOCS))
def test_bad_document_fails_ingest_and_leaves_store_intact(indexed_project, case: str) -> None:
    name, content, expected = BAD_DOCS[case]
    docs = indexed_project.data / "docs"
    if content is None:  # a second file with an id that already exists
        content = sorted(docs.glob("*.md"))[0].read_bytes()
    path = docs / f"{name}.md"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = state(indexed_project)
    result = run(indexed_project, "ingest")
    assert result.exit_code == USER_ERROR
    assert f"{name}.md" in result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert state(indexed_project) == before
    assert run(indexed_project, "ask", "How do I upgrade?").exit_code == 0  # previous index still serves


def test_empty_question(indexed_project) -> None:
    result = run(indexed_project, "ask", "  ")
    assert result.exit_code == USER_ERROR
    assert "field 'question': must not be empty" in result.output


def test_a_question_of_invisible_characters_is_refused(indexed_project) -> None:
    result = run(indexed_project, "ask", "\u200b\u200d\u2060")
    assert result.exit_code == USER_ERROR
    assert "field 'question': must contain visible text" in " ".join(result.output.split())


def test_one_megabyte_question(indexed_project) -> None:
    result = run(indexed_project, "ask", "-", stdin="why " * 262_144)
    assert result.exit_code == USER_ERROR
    assert "too long: 1048575 characters" in result.output


def test_unknown_prompt_version(indexed_project) -> None:
    result = run(indexed_project, "ask", "hi", env={"DOCS_ASSISTANT_PROMPT__VERSION": "7"})
    assert result.exit_code == USER_ERROR
    assert "unknown prompt rag-answer v7" in result.output
    assert "available: rag-answer v1, rag-answer v2" in result.output


def test_missing_model_path(indexed_project, tmp_path: Path) -> None:
    result = run(indexed_project, "ask", "hi", env={"DOCS_ASSISTANT_MODEL__NAME": str(tmp_path / "gone")})
    assert result.exit_code == USER_ERROR
    assert "DOCS_ASSISTANT_MODEL__NAME" in result.output
    assert "gone" in result.output


def test_bad_setting_value(indexed_project) -> None:
    result = run(indexed_project, "index", env={"DOCS_ASSISTANT_RETRIEVAL__TOP_K": "zero"})
    assert result.exit_code == USER_ERROR
    assert "retrieval.top_k" in result.output


def test_corrupt_lancedb_directory(indexed_project) -> None:
    store_uri = indexed_project.settings().paths.store_uri
    before = state(indexed_project)
    for manifest in (store_uri / f"{CHUNKS}.lance" / "_versions").iterdir():
        manifest.write_bytes(b"\0garbage")
    for command in (["ask", "How do I upgrade?"], ["index"]):
        result = run(indexed_project, *command)
        assert result.exit_code == USER_ERROR, result.output
        assert "chunks" in result.output
        assert "restore" in result.output
    store = FeatureStore(store_uri)
    assert {n: store.open(n).version for n in ("documents", "qa", "feedback")} == {
        n: before[n] for n in ("documents", "qa", "feedback")
    }


def test_retrieval_gate_passes_then_fails_when_documents_go_missing(full_project, tmp_path: Path) -> None:
    """The gate is real: index only a few documents and hit@5 drops under the threshold."""
    import shutil

    ok = run(full_project, "retrieval-eval", env={"DOCS_ASSISTANT_PATHS__REPORTS_DIR": str(tmp_path / "r1")})
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "r1" / "retrieval" / "summary.json").read_text())["passed"] is True

    state_dir = tmp_path / "var"
    shutil.copytree(full_project.settings().paths.state_dir, state_dir, ignore=shutil.ignore_patterns("models"))
    table = FeatureStore(state_dir / "lancedb").open(CHUNKS)
    keep = sorted({r["doc_id"] for r in table.to_arrow().select(["doc_id"]).to_pylist()})[:10]
    table.delete("doc_id NOT IN (" + ", ".join(f"'{d}'" for d in keep) + ")")
    env = {"DOCS_ASSISTANT_PATHS__STATE_DIR": str(state_dir), "DOCS_ASSISTANT_PATHS__REPORTS_DIR": str(tmp_path / "r2")}
    failed = run(full_project, "retrieval-eval", env=env)
    assert failed.exit_code == GATE_FAILED
    assert "gate failed" in failed.output
    assert json.loads((tmp_path / "r2" / "retrieval" / "summary.json").read_text())["passed"] is False


def test_console_script_runs_as_a_process(indexed_project) -> None:
    """The installed entry point, in a fresh interpreter, reports errors without a traceback."""
    exe = Path(sys.executable).with_name("docs-assistant")
    env = os.environ | indexed_project.env() | {"DOCS_ASSISTANT_PROMPT__VERSION": "9"}
    proc = subprocess.run([exe, "ask", "hi"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == USER_ERROR
    assert "unknown prompt rag-answer v9" in proc.stderr
    assert "Traceback" not in proc.stderr
