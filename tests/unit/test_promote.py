"""Promotion without an engine: what it refuses before touching one, and how it reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docs_assistant.cli import app
from docs_assistant.deploy import promote as promotion
from docs_assistant.deploy import swarm
from docs_assistant.deploy.environments import load_environment, load_environments
from docs_assistant.deploy.swarm import DeployResult
from docs_assistant.errors import DeployError

REPO = Path(__file__).resolve().parents[2]
ENVS = REPO / "deploy" / "environments"
IMAGE = "registry.example/docs-assistant@sha256:" + "1" * 64


def test_an_environment_that_needs_approval_is_not_deployed_without_it(tmp_path: Path) -> None:
    steps = promotion.promote(IMAGE, load_environments(ENVS), start="prod", directory=ENVS, reports_dir=tmp_path)
    assert [(s.environment, s.state, s.deploy) for s in steps] == [("prod", "awaiting_approval", None)]
    assert steps[0].line() == "prod: waits for approval (approval = true); not deployed"


def test_to_must_be_on_the_promotion_chain(tmp_path: Path) -> None:
    with pytest.raises(DeployError) as err:
        promotion.promote(IMAGE, load_environments(ENVS), start="staging", stop="dev", reports_dir=tmp_path)
    assert "--to 'dev' is not on the promotion chain staging -> prod" in str(err.value)


def test_a_failed_startup_is_a_failed_gate_on_startup() -> None:
    env = load_environments(ENVS)["dev"]
    result = DeployResult("dev", IMAGE, "old", "rolled_back", None, "http://127.0.0.1:8101", "task: non-zero exit (3)")
    gate = promotion.startup_failure(env, result)
    assert gate["passed"] is False
    assert gate["failed"] == ["startup_s"]
    assert gate["reason"] == "rolled_back: task: non-zero exit (3)"
    assert gate["gate"]["max_startup_s"] == env.gate.max_startup_s
    step = promotion.Step("dev", IMAGE, "failed", deploy=result.as_dict(), gate=gate, rollback={"image": "old"})
    assert step.line() == f"dev: {IMAGE}: gate failed on startup_s; rolled back to old"


def test_the_manifest_records_the_deploy_and_the_gate(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    dev_gate = {"passed": True}
    gates = {"dev": dev_gate}
    manifest.write_text(json.dumps({"version": "1.0.0", "git_sha": "0123abc", "gates": gates}))
    gate = {"passed": False, "failed": ["p95_ms"], "measured": {"p95_ms": 9000.0}, "gate": {}, "url": "u"}
    deployed = {"state": "deployed", "image": IMAGE}
    promotion.record(promotion.Step("staging", IMAGE, "failed", deploy=deployed, gate=gate), manifest)
    data = json.loads(manifest.read_text())
    assert data["gates"]["dev"] == {"passed": True}  # the other environments' entries stay
    assert data["gates"]["staging"]["failed"] == ["p95_ms"]
    assert data["gates"]["staging"]["image"] == IMAGE
    assert data["deploys"]["staging"] == {"state": "deployed", "image": IMAGE, "rollback": None}


def test_deploy_without_an_image_or_a_manifest_names_what_to_do(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_PATHS__REPORTS_DIR", str(tmp_path / "reports"))
    run = CliRunner().invoke(app, ["deploy", "dev", "--dir", str(ENVS)])
    assert run.exit_code == 2, run.output
    assert "no image to deploy" in run.output
    assert "nox -s build_image" in run.output


def test_deploy_names_an_unknown_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_PATHS__REPORTS_DIR", str(tmp_path / "reports"))
    run = CliRunner().invoke(app, ["deploy", "uat", "--image", IMAGE, "--dir", str(ENVS)])
    assert run.exit_code == 2, run.output
    assert "uat" in run.output


def test_the_gate_tests_the_engine_host_of_a_remote_docker_host(tmp_path: Path) -> None:
    text = (ENVS / "staging.toml").read_text(encoding="utf-8")
    remote = text.replace(
        '# docker_host = "ssh://deploy@staging.example.com"', 'docker_host = "ssh://deploy@staging.example.com"'
    )
    assert remote != text
    (tmp_path / "staging.toml").write_text(remote, encoding="utf-8")
    assert swarm.url_of(load_environment("staging", tmp_path)) == "http://staging.example.com:8102"
    assert swarm.url_of(load_environments(ENVS)["staging"]) == "http://127.0.0.1:8102"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["prod", "--no-gate"], "prod requires approval"),
        (["dev", "--no-gate", "--promote"], "--promote and --to need the gate"),
    ],
)
def test_an_ungated_deploy_neither_promotes_nor_skips_approval(
    tmp_path: Path, monkeypatch, args: list[str], says: str
) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_PATHS__REPORTS_DIR", str(tmp_path / "reports"))
    run = CliRunner().invoke(app, ["deploy", *args, "--image", IMAGE, "--dir", str(ENVS)])
    assert run.exit_code == 2, run.output
    assert says in run.output


@pytest.mark.parametrize("given", [False, True], ids=["manifest", "image"])
def test_the_approval_hint_is_the_readmes_command_when_the_manifest_names_the_image(
    tmp_path: Path, given: bool
) -> None:
    """Nothing deploys (prod waits), so no engine is needed: only the hint is under test."""
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps({"version": "0.2.0", "git_sha": "0" * 40, "image": {"reference": IMAGE}}), encoding="utf-8"
    )
    args = ["deploy", "prod", "--promote", "--manifest", str(manifest), "--dir", str(ENVS)]
    result = CliRunner().invoke(app, [*args, *(["--image", IMAGE] if given else [])], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "prod: waits for approval" in result.output
    expected = f"docs-assistant deploy prod --image {IMAGE}" if given else "./noxw -s deploy -- prod"
    assert f"approve with: {expected} --promote --approve" in result.output
