"""The reusable workflows, run by act on this machine for a caller that is not this project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..repo_copy import copy_repo  # noqa: TID252 - the one repository-copy helper
from .conftest import REPO, git_repo, run_act

pytestmark = pytest.mark.workflows

CI = ".github/workflows/ci.yml"


def test_fixture_ci_passes(fixture_repo: Path, tmp_path: Path) -> None:
    result = run_act(fixture_repo, CI, scratch=tmp_path / "act")
    log = result.stdout
    assert result.returncode == 0, log[-6000:]
    for session in ("lint", "tests", "index"):
        assert f"Session {session} was successful" in log, session
    # pytest-args `-k "add and not selected"` reached pytest as two arguments, through env: and shlex
    assert "1 passed, 1 deselected" in log
    assert "outputs: tests=success reports/tests index=success fixture-reports" in log
    assert "alls-green stand-in: tests: success" in log
    # the session wrote reports/tests/summary.md only: the workflow published it, once
    assert log.count("pytest -k add and not selected passed") == 1
    # the index session appended to $GITHUB_STEP_SUMMARY itself: the workflow did not repeat it
    assert log.count("fixture index, built on main") == 1
    uploaded = tmp_path / "act" / "artifacts" / "fixture-reports"
    assert (uploaded / "index" / "summary.md").is_file(), sorted(uploaded.rglob("*"))


def test_a_failing_test_fails_the_run(fixture_repo: Path, tmp_path: Path) -> None:
    (fixture_repo / "tests" / "test_planted.py").write_text(
        "def test_add_planted_failure() -> None:\n    assert 1 + 1 == 3\n", encoding="utf-8"
    )
    result = run_act(fixture_repo, CI, scratch=tmp_path / "act")
    log = result.stdout
    assert result.returncode != 0, log[-6000:]
    assert "test_add_planted_failure" in log
    assert "Session tests failed" in log
    assert "Session lint was successful" in log  # the jobs of the same stage still ran
    assert "Session index was successful" in log
    # act runs no later stage once a job failed, not even `if: always()` jobs: the gate is not reached
    # here (on GitHub it runs and fails too); test_fixture_ci_passes shows it reading the results
    assert "Error: Job 'nox -s tests' failed" in log


def test_own_ci_lint_job_passes(tmp_path: Path) -> None:
    """This repository's ci.yml: `uses: ./.github/workflows/lint.yml` runs `nox -s lint` on this tree."""
    result = run_act(REPO, CI, job="lint", scratch=tmp_path / "act")
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Session lint was successful" in result.stdout


def own_repo(tmp_path: Path, plant: str | None = None) -> Path:
    """A git copy of this repository (its noxfile, data/ and ci.yml), with one bad QA line if asked."""
    staged = tmp_path / "staged"
    copy_repo(staged)
    if plant:
        with (staged / "data" / "qa" / "train.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(plant + "\n")
    return git_repo(staged, tmp_path / "repo")


def validation_report(scratch: Path) -> dict:
    path = scratch / "artifacts" / "data-validation-reports" / "validate_data" / "summary.json"
    assert path.is_file(), sorted((scratch / "artifacts").rglob("*"))
    return json.loads(path.read_text(encoding="utf-8"))


def test_data_validation_passes_on_clean_data(tmp_path: Path) -> None:
    repo = own_repo(tmp_path)
    result = run_act(repo, CI, job="data-validation", scratch=tmp_path / "act")
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Session validate_data was successful" in result.stdout
    report = validation_report(tmp_path / "act")
    assert report["passed"] is True
    assert report["counts"]["total"]["quarantined"] == 0


def test_data_validation_fails_on_a_planted_bad_row(tmp_path: Path) -> None:
    lines = (REPO / "data" / "qa" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    bad_line = len([line for line in lines if line.strip()]) + 1
    repo = own_repo(tmp_path, plant='{"id": "qa-cut", "question": "What happens to a trunc')
    result = run_act(repo, CI, job="data-validation", scratch=tmp_path / "act")
    log = result.stdout
    assert result.returncode != 0, log[-6000:]
    assert f"data/qa/train.jsonl:{bad_line}: field 'question'" in log
    assert "gate failed" in log
    assert "Session validate_data failed" in log
    report = validation_report(tmp_path / "act")  # uploaded although the job failed
    assert report["passed"] is False
    assert report["ingested"] is False
    first = report["checks"][[c["check"] for c in report["checks"]].index("qa.json")]["first_failures"][0]
    assert (first["file"], first["line"], first["field"]) == ("data/qa/train.jsonl", bad_line, "question")
