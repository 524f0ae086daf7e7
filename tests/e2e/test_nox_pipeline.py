"""The README's main command, for real: `nox -s pipeline` in a copy of the repository, once.

The pipeline ends by deploying the image it built to dev and staging on the local swarm, each behind its
load-test gate, and stops before prod, which needs approval; `nox -s deploy -- prod --promote --approve`
then takes it to prod. The copy's environments get free ports, their own secret names and short gates.

The release stage previews (a pipeline never tags) and the image, built on the real Docker Engine, carries
the adapter the release manifest pins. Then the cheap stages run again on unchanged inputs
(`nox -x -s validate_data index eval_prompts`): they must re-embed nothing, commit
no new table version and reuse every eval case. (A second fine-tune that cannot beat the champion is
tested in tests/integration/test_finetune.py; the pinned adapter across a moved alias in tests/docker.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from docs_assistant.cli import FINETUNING

from ..docker.conftest import (  # noqa: TID252 - the machine's image settings
    ENVIRONMENTS,
    engine,
    image_env,
    remove_environments,
    shorten_environments,
    skip_or_fail_without_docker,
)
from ..repo_copy import clean_env, copy_repo  # noqa: TID252 - the one repository-copy helper

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def git_snapshot(root: Path) -> None:
    """Make the copy a repository with one conventional commit, as a release needs."""
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    identity |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "feat: a first release"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=os.environ | identity)


def nox(root: Path, sessions: str = "pipeline", *posargs: str) -> subprocess.CompletedProcess[str]:
    uv, nox_exe = shutil.which("uv"), shutil.which("nox")
    assert uv, "uv must be on PATH (./noxw puts it there)"
    assert nox_exe, "nox must be installed in the test environment (dependency group 'test')"
    env = clean_env()
    return subprocess.run(
        [
            nox_exe,
            "-x",
            "-s",
            *sessions.split(),
            "--reuse-venv=yes",
            "--no-color",
            *(["--", *posargs] if posargs else []),
        ],
        cwd=root,
        # fewer LoRA steps than the default two epochs keep CI short; the stage and its gate are the same
        env=env | image_env() | {"SAMPLE_QUESTIONS": "2", "DOCS_ASSISTANT_FINETUNE__MAX_STEPS": "6"},
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )


def report(root: Path, stage: str) -> dict:
    return json.loads((root / "reports" / stage / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.timeout(2400)  # a whole pipeline (validate, index, evals, finetune, image, deploys) from cold
def test_pipeline_answers_then_a_noop_rerun_reembeds_nothing(tmp_path: Path) -> None:
    if engine() is None:
        skip_or_fail_without_docker()
    root = tmp_path / "repo"
    copy_repo(root)
    tag = shorten_environments(root)
    git_snapshot(root)
    try:
        check_pipeline(root)
    finally:
        remove_environments(root, tag)


def check_pipeline(root: Path) -> None:
    first = nox(root)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    output = first.stdout + first.stderr
    assert "A: " in output
    assert "[1] " in output
    cold = report(root, "index")
    assert cold["documents_embedded"] == cold["documents"] > 0
    assert report(root, "retrieval")["passed"] is True
    evals = report(root, "eval_prompts")  # the committed suites and baseline, on the default model
    assert evals["passed"] is True, evals["failures"]
    manifest = json.loads((root / "reports" / "release" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tagged"] is False  # previewed: the pipeline never tags
    assert manifest["version"] == "0.2.0"  # the feat: commit bumps the minor version (0.x)
    image = report(root, "build_image")["image"]
    assert manifest["image"]["id"] == image["id"]
    if FINETUNING:
        tuned = report(root, "finetune")
        assert tuned["registered"]["version"] == 1
        assert tuned["promoted"] is True, tuned["reason"]
        assert (root / "reports" / "finetune" / "adapter" / "adapter_model.safetensors").is_file()
        assert image["labels"]["io.docs-assistant.adapter.version"] == "1"  # the champion just promoted
        assert manifest["adapter"]["version"] == 1  # the release pinned it; the image carries exactly those bytes
        assert image["labels"]["io.docs-assistant.adapter.sha256"] == manifest["adapter"]["hash"]
    else:  # rendered with include_finetuning=no: the base model alone, and no stage trained
        assert manifest["adapter"] is None
        assert not (root / "reports" / "finetune").exists()
    assert manifest["gates"].keys() == {"dev", "staging"}  # prod waits for approval
    assert "prod: waits for approval" in output
    assert "approve with: ./noxw -s deploy -- prod --promote --approve" in output  # the README's command

    approved = nox(root, "deploy", "prod", "--promote", "--approve")
    assert approved.returncode == 0, approved.stdout[-4000:] + approved.stderr[-4000:]
    manifest = json.loads((root / "reports" / "release" / "manifest.json").read_text(encoding="utf-8"))
    for name in ENVIRONMENTS:  # the whole chain on the default build: three passed gates, one digest
        gate, deployed = manifest["gates"][name], manifest["deploys"][name]
        assert gate["passed"] is True, (name, gate)
        assert gate["image"] == image["id"]
        assert gate["measured"]["requests"] > 0
        assert deployed["state"] == "deployed"
        assert deployed["image"] == image["id"]
    assert manifest["deploys"]["staging"]["startup_s"] > 0  # two replicas rolled out and measured

    rerun = nox(root, "validate_data index eval_prompts")  # the cheap stages on unchanged inputs: a no-op
    assert rerun.returncode == 0, rerun.stdout[-4000:] + rerun.stderr[-4000:]
    warm = report(root, "index")
    assert (warm["documents_embedded"], warm["chunks_embedded"], warm["documents_removed"]) == (0, 0, 0)
    assert warm["table_version"] == cold["table_version"]
    assert report(root, "ingest")["changed"] is False
    assert report(root, "eval_prompts")["cache"]["misses"] == 0  # every eval case reused
    assert sorted(p.name for p in (root / ".nox").iterdir() if p.is_dir()) == ["stages"], "one shared environment"
    files = [f.stat() for f in (root / ".nox").rglob("*") if f.is_file() and not f.is_symlink()]
    own = sum(s.st_size for s in files if s.st_nlink == 1)  # what the environment adds beyond uv's cache
    print(f".nox after the pipeline: {sum(s.st_size for s in files) / 1e9:.2f} GB, {own / 1e6:.0f} MB not shared")

    down = nox(root, "down")  # the README's "stop everything"
    assert down.returncode == 0, down.stdout[-4000:] + down.stderr[-4000:]
    left_behind(root)
    again = nox(root, "down")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]


def left_behind(root: Path) -> None:
    """Nothing of the copy's environments is left on the engine: no service, secret or network."""
    from docs_assistant.deploy import swarm
    from docs_assistant.deploy.environments import load_environments

    client = engine()
    ours = {name for env in load_environments(root / "deploy" / "environments").values() for name in swarm.names(env)}
    secrets = {
        env.secrets[k] for env in load_environments(root / "deploy" / "environments").values() for k in env.secrets
    }
    assert not [s.name for s in client.services.list() if s.name in ours]
    assert not [n.name for n in client.networks.list() if n.name in ours]
    assert not [s.name for s in client.secrets.list() if s.name in secrets]
