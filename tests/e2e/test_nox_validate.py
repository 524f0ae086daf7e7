"""`nox -s validate_data` for real, in a copy of the repository: clean data passes and is ingested; a
planted bad row fails the session, keeps every feature table at its version, is quarantined, and stops
the chain `nox -x -s validate_data index` before indexing (no session `requires` another: `-x` chains)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ..repo_copy import clean_env, copy_repo  # noqa: TID252 - the one repository-copy helper

pytestmark = pytest.mark.e2e


def nox(root: Path, *sessions: str) -> subprocess.CompletedProcess[str]:
    nox_exe = shutil.which("nox")
    assert nox_exe, "nox must be installed in the test environment (dependency group 'test')"
    env = clean_env()
    return subprocess.run(
        [nox_exe, "-x", "-s", *sessions, "--reuse-venv=yes", "--no-color"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def table_versions(root: Path) -> dict[str, int]:
    import lancedb

    db = lancedb.connect(str(root / "var" / "lancedb"))
    return {name: db.open_table(name).version for name in db.list_tables().tables}


def test_planted_bad_row_fails_validate_data_and_never_reaches_index(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    copy_repo(root)
    clean = nox(root, "validate_data")
    assert clean.returncode == 0, clean.stdout[-4000:] + clean.stderr[-4000:]
    before = table_versions(root)
    assert set(before) == {"documents", "qa", "feedback"}

    train = root / "data" / "qa" / "train.jsonl"
    first = json.loads(train.read_text(encoding="utf-8").splitlines()[0])
    line = len(train.read_text(encoding="utf-8").splitlines()) + 1
    with train.open("a", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                first | {"question": "A new question citing nothing real?", "doc_ids": ["no-such-page"], "id": "qa-new"}
            )
            + "\n"
        )

    failed = nox(root, "validate_data", "index")
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-4000:]
    assert f"data/qa/train.jsonl:{line}: field 'doc_ids'" in output
    assert "Session validate_data failed" in output
    assert "Running session index" not in output  # -x: the chain stops at the failed gate
    after = table_versions(root)
    assert {k: after[k] for k in before} == before
    assert "chunks" not in after
    import lancedb

    rows = lancedb.connect(str(root / "var" / "lancedb")).open_table("quarantine").to_arrow().to_pylist()
    assert [(r["file"], r["line"], r["field"], r["check"]) for r in rows] == [
        ("data/qa/train.jsonl", line, "doc_ids", "cited_docs_exist")
    ]
    summary = json.loads((root / "reports" / "validate_data" / "summary.json").read_text(encoding="utf-8"))
    assert summary["passed"] is False
    assert summary["rows_balance"] is True
