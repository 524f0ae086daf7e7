"""`prompt-evals.yml`, called from this repository's ci.yml and run by act on a copy of this tree.

The copy's eval datasets are cut to a few rows so one run takes minutes; the gate itself is the
committed one. One run with two variants: the default prompt meets every threshold, and a variant that drops
the retrieved context breaks one, which fails the job. (The job passing, `passed=true`, is the generated
project's CI run in tests/template/test_generated_ci.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..repo_copy import copy_repo  # noqa: TID252 - the one repository-copy helper
from .conftest import git_repo, run_act

pytestmark = pytest.mark.workflows

CI = ".github/workflows/ci.yml"
KEEP = {"qa.jsonl": ("qa-eval-002", "qa-eval-006", "oos-001"), "safety.jsonl": ("injection-01", "canary-01")}
NO_CONTEXT = 'id = "rag-answer"\nversion = "9"\nparameters = ["question"]\ntemplate = """Q: {question}\nA:"""\n'


def eval_repo(tmp_path: Path, *variants: str) -> Path:
    """This tree's tracked and new files, with sliced datasets, no baseline and `variants` (default: the default prompt)."""
    source = tmp_path / "source"
    copy_repo(source)
    for name, keep in KEEP.items():
        path = source / "evals" / "datasets" / name
        lines = [x for x in path.read_text(encoding="utf-8").splitlines() if json.loads(x)["id"] in keep]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    suites = source / "evals" / "suites.toml"
    text = suites.read_text(encoding="utf-8").replace('baseline = "baseline.json"', 'baseline = ""')
    text = text.replace(
        'variants = ["rag-answer@1", "rag-answer@2"]', f"variants = {json.dumps(variants or ['rag-answer@1'])}"
    )
    text = text.replace("blocked_rate = { threshold = 0.4", "blocked_rate = { threshold = 0.5")
    suites.write_text(text, encoding="utf-8")
    (source / "prompts" / "rag-answer.v9.toml").write_text(NO_CONTEXT, encoding="utf-8")
    return git_repo(source, tmp_path / "repo", remote="https://github.com/docs-assistant/docs-assistant")


def test_prompt_evals_fail_only_on_the_variant_that_drops_the_context(tmp_path: Path) -> None:
    repo = eval_repo(tmp_path, "rag-answer@1", "rag-answer@9")
    result = run_act(repo, CI, job="prompt-evals", scratch=tmp_path / "act")
    log = result.stdout
    assert result.returncode != 0, log[-6000:]
    assert "rag-answer@9 answers.context_visible = " in log  # the CLI's line, and the published summary
    assert "breaks threshold 0.4500; worst cases: qa-eval-" in log
    assert "Session eval_prompts failed" in log
    assert "outputs: passed=false" in log
    uploaded = tmp_path / "act" / "artifacts" / "prompt-evals-reports" / "eval_prompts"
    assert (uploaded / "cases.html").is_file(), sorted(uploaded.parent.rglob("*"))  # uploaded on failure too
    summary = json.loads((uploaded / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["variants"]) == {"rag-answer@1", "rag-answer@9"}
    assert summary["failures"], "the gate failed on something"
    assert {f["variant"] for f in summary["failures"]} == {"rag-answer@9"}, "the default prompt met every threshold"
