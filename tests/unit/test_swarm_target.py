"""The swarm deploy target without an engine: what it refuses and how it compares images."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from docs_assistant.cli import app
from docs_assistant.deploy import swarm
from docs_assistant.deploy.environments import load_environment, remote_host
from docs_assistant.errors import DeployError

REPO = Path(__file__).resolve().parents[2]
IMAGE = "registry/repo@sha256:" + "0" * 64
#: an engine on another machine that nothing here answers for: a refusal must come before any connection
REMOTE = "ssh://deploy@dev.example.invalid"


def test_a_kubernetes_environment_is_sent_to_kubectl(tmp_path: Path) -> None:
    text = (REPO / "deploy/environments/staging.toml").read_text(encoding="utf-8")
    (tmp_path / "staging.toml").write_text(text.replace('target = "docker"', 'target = "kubernetes"'), encoding="utf-8")
    env = load_environment("staging", tmp_path)
    with pytest.raises(DeployError) as err:
        swarm.deploy(env, IMAGE, client=object(), directory=tmp_path)
    text = str(err.value)
    assert str(tmp_path / "staging.toml") in text
    assert "kubectl apply --server-side -k deploy/kubernetes/overlays/staging" in text


def test_services_are_named_after_the_environment() -> None:
    env = load_environment("prod", REPO / "deploy/environments")
    assert swarm.names(env) == ("docs-assistant-prod", "docs-assistant-prod", "docs-assistant-prod-proxy")


@pytest.mark.parametrize(
    ("live", "expected", "same"),
    [
        ("repo:v1", "repo:v1", True),
        ("reg/repo@sha256:abc", "sha256:abc", True),
        ("reg/repo@sha256:abc", "other/repo@sha256:abc", True),
        ("reg/repo@sha256:abc", "reg/repo@sha256:def", False),
        ("repo:v1", "repo:v2", False),
    ],
)
def test_images_compare_by_digest(live: str, expected: str, same: bool) -> None:
    assert swarm.same_image(live, expected) is same


@pytest.mark.parametrize(
    ("docker_host", "remote"),
    [
        (None, None),
        ("unix:///var/run/docker.sock", None),
        ("tcp://127.0.0.1:2375", None),
        ("ssh://me@localhost", None),
        ("tcp://[::1]:2376", None),
        ("tcp://0.0.0.0:2375", None),
        ("ssh://[::ffff:127.0.0.1]", None),
        ("tcp://localhost.:2375", None),
        ("tcp://[::1", None),  # malformed: connecting fails first, naming it
        ("tcp://10.0.0.5:2376", "10.0.0.5"),
        ("tcp://[fd00::5]:2376", "fd00::5"),
        ("ssh://deploy@dev.example.com", "dev.example.com"),
    ],
)
def test_only_an_engine_on_another_machine_is_remote(docker_host: str | None, remote: str | None) -> None:
    assert remote_host(docker_host) == remote


@pytest.mark.parametrize("args", [["--no-gate"], ["--gate"], ["--promote"]])
def test_a_loopback_bind_is_refused_when_docker_host_points_elsewhere(
    args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the committed dev binds 127.0.0.1: on the remote engine that port would be out of everyone's reach
    monkeypatch.setenv("DOCKER_HOST", REMOTE)
    monkeypatch.chdir(tmp_path)
    envs = REPO / "deploy/environments"
    run = CliRunner().invoke(app, ["deploy", "dev", "--image", IMAGE, "--dir", str(envs), *args])
    assert run.exit_code == 2, run.output  # a setting to change, as for any other bad environment
    text = " ".join(run.output.split())
    assert str(envs / "dev.toml") in text
    assert f"bind = '127.0.0.1' while DOCKER_HOST={REMOTE} is another machine" in text
    assert 'set bind = "0.0.0.0" (with an API key in [secrets])' in text  # brackets printed, not read as markup
    assert not (tmp_path / "reports").exists()  # refused before anything ran or was reported


def test_every_address_on_a_remote_docker_host_answers_at_that_host(monkeypatch: pytest.MonkeyPatch) -> None:
    env = load_environment("staging", REPO / "deploy/environments")
    assert env.binds_all_addresses
    monkeypatch.setenv("DOCKER_HOST", REMOTE)
    swarm.check_target(env)  # every address: reachable from here through the remote host's name
    assert swarm.url_of(env) == f"http://dev.example.invalid:{env.port}"
    monkeypatch.setenv("DOCKER_HOST", "tcp://[fd00::5]:2376")
    assert swarm.url_of(env) == f"http://[fd00::5]:{env.port}"
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert swarm.url_of(env) == f"http://127.0.0.1:{env.port}"


def test_commands_that_only_read_do_not_refuse_a_loopback_bind_on_a_remote_docker_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = load_environment("dev", REPO / "deploy/environments")
    monkeypatch.setenv("DOCKER_HOST", REMOTE)
    swarm.check_target(env)  # drift and the feedback export: nothing is published
    with pytest.raises(DeployError):
        swarm.check_deployable(env)
