"""A generated project's own `ci.yml`, run end to end by act against the template's reusable workflows.

The project is rendered with a custom workflows repository and tag; act maps that `OWNER/REPO@REF` to
this tree's `.github/`, so the run exercises the rewritten `uses:` lines, the real nox sessions of the
generated project, and the gate. A planted failing test must fail the run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..workflows.conftest import publish_workflows, run_act  # noqa: TID252 - one harness for both suites
from .conftest import REPO, ZETA, load_hook, render

pytestmark = [pytest.mark.workflows, pytest.mark.e2e]

CI = ".github/workflows/ci.yml"
ACT_TIMEOUT = 1200  # lint, tests, data validation and prompt evals of a cold generated project, on two cores
#: the integration, training and e2e layers already run in this repository's own suite; here the CI wiring is tested
FAST_SUITE = ["--var", "PYTEST_ARGS=-m 'not integration and not training and not e2e and not docker'"]


#: the custom answers with every non-default option, and free text that needs escaping in Python and TOML
NON_DEFAULT = ZETA | {"include_finetuning": "no", "deploy_target": "kubernetes", "author_name": 'Zed "Z" Zeta'}


def generated_repo(template_repo: Path, tmp_path: Path, answers: dict[str, str] = ZETA) -> Path:
    project = render(template_repo, tmp_path / "out", **answers)
    remote = ["git", "remote", "add", "origin", "https://github.com/zeta-org/zeta-bot"]
    subprocess.run(remote, cwd=project, check=True)
    return project


def run_generated_ci(project: Path, tmp_path: Path, answers: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The project's ci.yml, against the template published as `workflows_repo@workflows_ref` and only that.

    The published copy is retargeted (hooks/retarget.py) as a publisher does before tagging, and act maps no
    other repository: a workflow that still called docs-assistant/docs-assistant would fail the run.
    """
    repo, ref = answers["workflows_repo"], answers["workflows_ref"]
    published = publish_workflows(tmp_path / "release")
    shutil.copy2(REPO / "cookiecutter.json", published)  # retarget reads the current target
    load_hook("retarget").retarget(published, repo, ref)
    return run_act(
        project,
        CI,
        scratch=tmp_path / "act",
        extra_local_repos={f"{repo}@{ref}": published},
        extra_args=FAST_SUITE,
        timeout=ACT_TIMEOUT,
        default_workflows=False,
    )


@pytest.mark.timeout(ACT_TIMEOUT + 120)
def test_generated_ci_runs_the_real_sessions_and_only_a_planted_failing_test_fails_it(
    template_repo: Path, tmp_path: Path
) -> None:
    """The non-default answers' project (no fine-tuning, Kubernetes), through its own `ci.yml`: one run.

    Lint, data validation and prompt evals pass, and the fast suite passes but for one planted test, which
    must fail the gate. (One run for both verdicts: this is the generated project's own CI, and the
    template's option matrix is checked by rendering, not by running this repository's suites again.)
    """
    project = generated_repo(template_repo, tmp_path, NON_DEFAULT)
    (project / "tests" / "unit" / "test_planted.py").write_text(
        "def test_planted_failure() -> None:\n    assert 2 + 2 == 5\n", encoding="utf-8"
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "planted failure"], cwd=project, check=True)
    result = run_generated_ci(project, tmp_path, NON_DEFAULT)
    log = result.stdout
    assert result.returncode != 0, log[-6000:]
    assert "Session lint was successful" in log
    assert "Session validate_data was successful" in log
    assert "Session eval_prompts was successful" in log
    assert "outputs: passed=true" in log  # prompt-evals.yml's passing path, on the committed suites and baseline
    evals = tmp_path / "act" / "artifacts" / "prompt-evals-reports" / "eval_prompts"
    assert (evals / "cases.html").is_file(), sorted(evals.parent.rglob("*"))
    assert re.search(r"FAILED \S*test_planted\.py::test_planted_failure", log), log[-6000:]
    assert re.search(r"\b1 failed, \d+ passed", log), log[-6000:]  # the planted test is the only failure
    assert "Session tests failed" in log
    assert "Error: Job 'nox -s tests' failed" in log
