"""schemathesis against the service's own OpenAPI document: no 5xx, no response outside the schema."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from docs_assistant.serve.app import create_app

from .conftest import KEY, running, wait_ready

pytestmark = pytest.mark.integration
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
#: what "conforms" means here; positive_data_acceptance is left out because the schema cannot carry
#: limits that are settings (the question's length), so a schema-valid 100 kB question rightly gets 422
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
)


def schemathesis_run(url: str, report: Path, *, max_examples: int = 20) -> subprocess.CompletedProcess[str]:
    args = [
        SCHEMATHESIS,
        f"--config-file={CONFIG}",
        "run",
        f"{url}/openapi.json",
        f"--header=Authorization: Bearer {KEY}",
        f"--checks={','.join(CHECKS)}",
        f"--max-examples={max_examples}",
        "--seed=20261127",
        # not "none": schemathesis 4.32 then reports no failure at all (the planted test below caught it)
        "--generation-database=:memory:",
        "--request-timeout=60",
        "--workers=1",
        "--no-color",
        "--report=junit",
        f"--report-dir={report}",
    ]
    # cwd: schemathesis and hypothesis keep caches in the working directory, never in the checkout
    return subprocess.run(args, capture_output=True, text=True, timeout=900, check=False, cwd=report.parent)


@pytest.fixture(scope="module")
def url(serve_project, embedder) -> Iterator[str]:
    settings = serve_project.settings(serve={"api_keys": [KEY], "max_concurrency": 2, "max_queue": 16})
    with running(create_app(settings, embedder=embedder)) as base:
        wait_ready(base)
        yield base


def test_no_server_error_and_no_schema_violation(url, tmp_path) -> None:
    result = schemathesis_run(url, tmp_path / "report")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    junit = "".join(f.read_text() for f in (tmp_path / "report").glob("junit*.xml"))
    for operation in ("POST /v1/answer", "POST /v1/chat/completions", "POST /v1/feedback", "GET /readyz"):
        assert operation in junit, operation  # every operation was exercised


def test_the_same_run_fails_on_a_route_that_breaks(tmp_path) -> None:
    """The harness is a real gate: a planted 500 and an off-schema response are both reported."""
    app = FastAPI()

    @app.get("/v1/items/{item}")
    async def item(item: int) -> dict[str, int]:
        if item != 0:
            raise RuntimeError("planted")
        return {"item": item}

    with running(app) as base:
        result = schemathesis_run(base, tmp_path / "report", max_examples=30)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "Server error" in output, output[-4000:]
