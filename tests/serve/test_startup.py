"""Start-up: liveness at once, readiness only after a warm-up answer, failures named with their phase."""

from __future__ import annotations

import time

import httpx
import pytest
from typer.testing import CliRunner

from docs_assistant.cli import app as cli
from docs_assistant.config import load_settings
from docs_assistant.errors import ConfigError
from docs_assistant.serve.app import create_app
from docs_assistant.serve.startup import PHASES

from .conftest import running, wait_ready

pytestmark = pytest.mark.integration


def poll_phase(client: httpx.Client, phase: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get("/readyz").json()
        if body["phase"] == phase:
            return body
        time.sleep(0.02)
    raise AssertionError(f"start-up never reached phase {phase!r}")


def test_healthz_at_once_readyz_503_until_the_warmup_generated(serve_project, embedder, gated) -> None:
    gated.gate.clear()
    application = create_app(serve_project.settings(), embedder=embedder, llm=gated)
    with running(application) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        waiting = poll_phase(client, "warmup")
        assert waiting["ready"] is False
        assert set(waiting["phases"]) == {"imports", "prompts", "model", "index"}
        assert client.get("/readyz").status_code == 503
        refused = client.post("/v1/answer", json={"question": "How do I install it?"})
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        # the /readyz polls above were 503s too: they report a state and refuse nothing, so only the /v1 call counts
        assert 'docs_assistant_rejected_total{reason="not_ready"} 1.0' in client.get("/metrics").text
        assert client.get("/healthz").status_code == 200

        gated.gate.set()
        seen = wait_ready(url)
        ready = client.get("/readyz").json()
        assert seen[-1] == 200
        assert ready["ready"] is True
        assert ready["phase"] == "ready"
        assert list(ready["phases"]) == list(PHASES)
        assert all(ms >= 0 for ms in ready["phases"].values())
        assert client.post("/v1/answer", json={"question": "How do I install it?"}).status_code == 200


def test_failed_startup_is_503_with_the_phase_and_the_error(serve_project, embedder, gated) -> None:
    settings = serve_project.settings(prompt={"version": "42"})
    with running(create_app(settings, embedder=embedder, llm=gated)) as url, httpx.Client(base_url=url) as client:
        deadline = time.monotonic() + 60
        while "error" not in (body := client.get("/readyz").json()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/readyz").status_code == 503
        assert body["ready"] is False
        assert body["phase"] == "prompts"
        assert "unknown prompt rag-answer v42" in body["error"]
        assert client.get("/healthz").status_code == 200
        assert client.post("/v1/answer", json={"question": "q"}).status_code == 503


def test_a_startup_error_on_the_open_readyz_names_the_problem_but_no_server_path(
    serve_project, embedder, gated, tmp_path
) -> None:
    models = serve_project.settings().paths.models_dir  # the built model stays; the store is empty
    settings = serve_project.settings(paths={"state_dir": str(tmp_path / "empty"), "model_cache_dir": str(models)})
    with running(create_app(settings, embedder=embedder, llm=gated)) as url, httpx.Client(base_url=url) as client:
        deadline = time.monotonic() + 60
        while "error" not in (body := client.get("/readyz").json()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "table 'chunks' does not exist" in body["error"]
        assert "nox -x -s validate_data index" in body["error"]  # what to do, still
        assert str(tmp_path) not in body["error"], body["error"]  # where the server keeps its files: not shown


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_outside_dev_without_api_keys_is_a_startup_error(serve_project, environment) -> None:
    settings = serve_project.settings(serve={"environment": environment})
    with pytest.raises(ConfigError, match=r"serve\.api_keys.*API keys are required in environment"):
        create_app(settings)


def test_cli_serve_refuses_prod_without_keys(serve_project) -> None:
    env = serve_project.env() | {"DOCS_ASSISTANT_SERVE__ENVIRONMENT": "prod"}
    result = CliRunner().invoke(cli, ["serve", "--port", "0"], env=env)
    assert result.exit_code == 2
    assert "API keys are required in environment 'prod'" in result.output
    assert "DOCS_ASSISTANT_SERVE__API_KEYS" in result.output


def test_api_keys_come_from_the_environment_as_a_json_list(monkeypatch) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_SERVE__API_KEYS", '["k1", "k2"]')
    monkeypatch.setenv("DOCS_ASSISTANT_SERVE__ENVIRONMENT", "prod")
    serve = load_settings().serve
    assert [k.get_secret_value() for k in serve.api_keys] == ["k1", "k2"]
    assert "k1" not in repr(serve)


def test_an_empty_api_key_is_refused(serve_project) -> None:
    settings = serve_project.settings(serve={"api_keys": [""]})
    with pytest.raises(ConfigError, match="an API key is empty"):
        create_app(settings)
