"""`nox -s validate_data` for real, in a copy of the repository: clean data passes and is ingested; a
planted bad row fails the stage, keeps every feature table at its version, is quarantined, and stops
`nox -s pipeline` before indexing, naming the stage that failed and the stages not run.

On a machine without Docker, `nox -s pipeline` stops before its first stage, saying so and how to run the
stages that need no Docker; `-- --until validate_data` then runs (the clean data's ingest above).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ..repo_copy import clean_env, copy_repo  # noqa: TID252 - the one repository-copy helper

pytestmark = pytest.mark.e2e


def nox(root: Path, *sessions: str, posargs: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    nox_exe = shutil.which("nox")
    assert nox_exe, "nox must be installed in the test environment (dependency group 'test')"
    return subprocess.run(
        [nox_exe, "-x", "-s", *sessions, "--reuse-venv=yes", "--no-color", *(["--", *posargs] if posargs else [])],
        cwd=root,
        env=clean_env() | env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def table_versions(root: Path) -> dict[str, int]:
    import lancedb

    db = lancedb.connect(str(root / "var" / "lancedb"))
    return {name: db.open_table(name).version for name in db.list_tables().tables}


def test_pipeline_without_docker_stops_before_any_stage_and_says_how_to_run_without(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    socket = tmp_path / "no-engine.sock"
    started = time.monotonic()
    result = nox(root, "pipeline", DOCKER_HOST=f"unix://{socket}")
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert (
        f"pipeline: build_image and deploy need Docker: no Docker Engine reachable at unix://{socket} "
        "(No such file or directory); start it, or run without: ./noxw -s pipeline -- --until "
    ) in output
    assert "pipeline: validate_data" not in output
    assert not (root / ".nox").exists(), "stopped before installing anything"
    assert not (root / "var").exists()
    assert not (root / "reports").exists()
    print(f"pipeline without Docker stopped after {elapsed:.1f} s")  # the closing note reports it


def test_planted_bad_row_fails_validate_data_and_never_reaches_index(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    copy_repo(root)
    # no Docker needed before build_image: the pipeline runs up to the stage it is told to stop after
    clean = nox(root, "pipeline", posargs=("--until", "validate_data"), DOCKER_HOST=f"unix://{tmp_path}/none.sock")
    assert clean.returncode == 0, clean.stdout[-4000:] + clean.stderr[-4000:]
    assert "preflight: ready for validate_data" in clean.stdout + clean.stderr
    assert "pipeline: stopped after validate_data (--until); not run: index" in clean.stderr
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

    failed = nox(root, "pipeline", posargs=("--until", "index"), DOCKER_HOST=f"unix://{tmp_path}/none.sock")
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-4000:]
    assert f"data/qa/train.jsonl:{line}: field 'doc_ids'" in output
    assert "pipeline: validate_data failed (its error is above); not run: index, eval_prompts" in output
    assert "pipeline: index" not in output  # the chain stops at the failed gate
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


def test_the_readmes_session_table_is_what_nox_lists_and_docs_builds(tmp_path: Path) -> None:
    """The README's `./noxw -l` and `./noxw -s docs`, in a copy: the table names exactly the sessions nox has."""
    root = copy_repo(tmp_path / "repo")
    built = nox(root, "docs")
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    sessions = subprocess.run(
        [shutil.which("nox") or "nox", "-l", "--no-color"], cwd=root, env=clean_env(), capture_output=True, text=True
    ).stdout
    names = {line.split()[1] for line in sessions.splitlines() if line.startswith(("* ", "- "))}
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    assert names == table, names ^ table
    assert (root / "reports" / "docs" / "index.html").is_file(), "nox -s docs built the site"
