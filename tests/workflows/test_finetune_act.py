"""`finetune.yml`, called from this repository's train.yml and run by act on a copy of this tree, on CPU.

The copy is the prompt-evals test's (eval datasets cut to a few rows), plus a job appended to train.yml
that prints what the reusable workflow's outputs were when they reached the caller.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import git, run_act
from .test_prompt_evals_act import eval_repo

pytestmark = pytest.mark.workflows

TRAIN = ".github/workflows/train.yml"
TIMEOUT = 1200  # validate, index, evals, then fine-tuning: about 6 minutes on two cores
#: `!cancelled()`: on a dispatch check-feedback is skipped, and a skip makes every job downstream of it skip
#: too unless the job says otherwise (GitHub does the same)
SHOW_OUTPUTS = """
  show-outputs:
    needs: [finetune]
    if: ${{ !cancelled() }}
    runs-on: ubuntu-latest
    steps:
      - name: Show the reusable workflow's outputs
        env:
          VERSION: ${{ needs.finetune.outputs.registered-version }}
          MODEL: ${{ needs.finetune.outputs.model-name }}
          PROMOTED: ${{ needs.finetune.outputs.promoted }}
          ARTIFACT: ${{ needs.finetune.outputs.artifact-name }}
        run: echo "caller got registered-version=$VERSION model-name=$MODEL promoted=$PROMOTED artifact=$ARTIFACT"
"""


def train_repo(tmp_path: Path) -> Path:
    repo = eval_repo(tmp_path)
    with (repo / TRAIN).open("a", encoding="utf-8") as fh:
        fh.write(SHOW_OUTPUTS)
    git(repo, "commit", "-qam", "show the outputs")
    return repo


def dispatch(tmp_path: Path, overrides: str, *extra_args: str) -> tuple[str, int]:
    result = run_act(
        train_repo(tmp_path),
        TRAIN,
        event="workflow_dispatch",
        scratch=tmp_path / "act",
        timeout=TIMEOUT,
        extra_args=["--input", f"overrides={overrides}", *extra_args],
    )
    return result.stdout, result.returncode


@pytest.mark.timeout(TIMEOUT + 60)
def test_finetune_registers_an_adapter_and_the_caller_gets_its_version(tmp_path: Path) -> None:
    # the runner is chosen by a GPU runner's labels; act maps `gpu` to this machine, which trains on CPU
    gpu_runner = ["--input", 'runs-on=["self-hosted", "gpu"]', "--platform", "gpu=-self-hosted"]
    log, returncode = dispatch(tmp_path, '{"max_steps": 10}', *gpu_runner)
    assert returncode == 0, log[-8000:]
    assert "Session finetune was successful" in log
    uploaded = tmp_path / "act" / "artifacts" / "finetune-reports" / "finetune"
    assert (uploaded / "summary.json").is_file(), sorted((tmp_path / "act" / "artifacts").rglob("*"))
    summary = json.loads((uploaded / "summary.json").read_text(encoding="utf-8"))
    registered = summary["registered"]
    assert registered["version"] >= 1
    for name in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "loss_curve.png", "summary.md"):
        assert (uploaded / name).is_file(), name
    promoted = str(summary["promoted"]).lower()
    assert f"outputs: registered-version={registered['version']} model-name={registered['name']}" in log
    assert (
        f"caller got registered-version={registered['version']} model-name={registered['name']} "
        f"promoted={promoted} artifact=finetune-reports"
    ) in log
    # no tracking server: the job's SQLite registry went along as its own artifact
    assert (tmp_path / "act" / "artifacts" / "finetune-reports-mlflow" / "mlflow.db").is_file()


def test_overrides_that_are_not_a_json_object_fail_before_any_session(tmp_path: Path) -> None:
    log, returncode = dispatch(tmp_path, '{"max_steps": 10')
    assert returncode != 0, log[-8000:]
    assert "input overrides is not JSON: Expecting ',' delimiter at column 17" in log
    assert "Session validate_data" not in log  # failed in seconds, before the sessions finetune requires
    assert "caller got" not in log


def test_a_scheduled_run_without_new_feedback_trains_nothing(tmp_path: Path) -> None:
    result = run_act(train_repo(tmp_path), TRAIN, event="schedule", scratch=tmp_path / "act")
    log = result.stdout
    assert result.returncode == 0, log[-8000:]
    assert '{"due": false, "usable_rows": 0, "trained_rows": 0, "new_rows": 0, "threshold": 50}' in log
    assert "nox -s finetune" not in log  # the finetune job was skipped
    assert "caller got registered-version= model-name= promoted= artifact=\n" in log
