"""The pipeline's preflight on the real Docker Engine: each problem a later stage would meet is one line and
its fix, found before any stage runs. (Without any engine: tests/e2e/test_nox_validate.py runs the pipeline.)
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from docs_assistant.config import load_settings
from docs_assistant.preflight import check

from .conftest import BASE_IMAGE, REPO, free_port

pytestmark = pytest.mark.docker


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_client: Any) -> Path:
    """A working directory with this tree's environment files, their ports moved to free ones."""
    target = tmp_path / "deploy" / "environments"
    shutil.copytree(REPO / "deploy" / "environments", target)
    for path in target.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        port = next(line for line in text.splitlines() if line.startswith("port = "))
        path.write_text(text.replace(port, f"port = {free_port()}"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCS_ASSISTANT_IMAGE__BASE_IMAGE", BASE_IMAGE)
    return tmp_path


def test_ready_engine_base_image_and_ports_pass(project: Path) -> None:
    assert check(load_settings(), ["validate_data", "build_image", "deploy"]) == []


def test_no_docker_stage_checks_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{project}/no-engine.sock")
    assert check(load_settings(), ["validate_data", "index"]) == []
    (problem,) = check(load_settings(), ["index", "build_image"], without="./noxw -s pipeline -- --until index")
    assert "no Docker Engine reachable" in problem.line()
    assert problem.line().endswith("run the stages without it: ./noxw -s pipeline -- --until index")


def test_unpullable_base_image_names_the_setting(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_IMAGE__BASE_IMAGE", "local/no-such-base:never")
    (problem,) = check(load_settings(), ["build_image", "deploy"])
    assert problem.stage == "build_image"
    assert "'local/no-such-base:never' is not on this engine and cannot be pulled" in problem.what
    assert "DOCS_ASSISTANT_IMAGE__BASE_IMAGE" in problem.fix


def test_a_port_another_program_holds_is_named_with_its_file(project: Path) -> None:
    dev = project / "deploy" / "environments" / "dev.toml"
    port = int(next(line for line in dev.read_text(encoding="utf-8").splitlines() if line.startswith("port = "))[7:])
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        problems = check(load_settings(), ["build_image", "deploy"])
        assert check(load_settings(), ["build_image"]) == []  # ports matter to deploy only
    assert [p.line() for p in problems] == [
        f"deploy: port {port} of dev is taken by another program: stop what listens there, or change `port` in "
        f"{Path('deploy/environments/dev.toml')}"
    ]


def test_a_port_our_own_loopback_proxy_holds_is_a_redeploy_not_a_problem(project: Path, docker_client: Any) -> None:
    """dev's proxy is a container on 127.0.0.1 (bind): the next pipeline deploys behind it, so its port is ours."""
    from docs_assistant.deploy.swarm import LABEL_ROLE

    dev = project / "deploy" / "environments" / "dev.toml"
    port = int(next(line for line in dev.read_text(encoding="utf-8").splitlines() if line.startswith("port = "))[7:])
    proxy = docker_client.containers.run(
        BASE_IMAGE,
        ["python3", "-m", "http.server", "8000"],
        labels={LABEL_ROLE: "proxy"},
        ports={"8000/tcp": ("127.0.0.1", port)},
        detach=True,
        remove=True,
    )
    try:
        assert check(load_settings(), ["deploy"]) == []
    finally:
        proxy.stop(timeout=1)
