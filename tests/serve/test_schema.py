"""schemathesis against the service's own OpenAPI document, every check: no 5xx, no response outside the schema,
every schema-valid request accepted and every schema-violating one refused (the schema says what is validated)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from docs_assistant.data.store import FEEDBACK, FeatureStore
from docs_assistant.errors import ConfigError
from docs_assistant.rag.questions import question_problem
from docs_assistant.serve.app import create_app
from docs_assistant.serve.schemas import body_limits, encoded_size, largest_chat, largest_message, visible_pattern

from .conftest import KEY, running, wait_ready

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CONFIG = Path(__file__).with_name("schemathesis.toml")


def schemathesis_run(url: str, report: Path, *, max_examples: int = 20) -> subprocess.CompletedProcess[str]:
    args = [
        SCHEMATHESIS,
        f"--config-file={CONFIG}",
        "run",
        f"{url}/openapi.json",
        f"--header=Authorization: Bearer {KEY}",
        "--checks=all",
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
def settings(serve_project):
    return serve_project.settings(serve={"api_keys": [KEY], "max_concurrency": 2, "max_queue": 16})


@pytest.fixture(scope="module")
def url(settings, embedder) -> Iterator[str]:
    with running(create_app(settings, embedder=embedder)) as base:
        wait_ready(base)
        yield base


def stored_feedback(settings) -> list[dict]:
    store = FeatureStore(settings.paths.store_uri)
    return store.read(FEEDBACK).to_pylist() if store.has_table(FEEDBACK) else []


@pytest.mark.integration
def test_no_server_error_and_no_schema_violation(url, settings, tmp_path) -> None:
    before = {row["id"] for row in stored_feedback(settings)}
    result = schemathesis_run(url, tmp_path / "report")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    junit = "".join(f.read_text() for f in (tmp_path / "report").glob("junit*.xml"))
    for operation in ("POST /v1/answer", "POST /v1/chat/completions", "POST /v1/feedback", "GET /readyz"):
        assert operation in junit, operation  # every operation was exercised
    # the schema's link (answer id -> feedback answer_id) took the stateful phase past the 404 of an unknown id:
    # feedback it generated was accepted and stored, each row citing an answer this process served
    assert re.search(r"API Links:\s+1 covered / 1 selected / 1 total", output), output[-3000:]
    new = [row for row in stored_feedback(settings) if row["id"] not in before]
    assert new, output[-3000:]
    assert all(row["answer"] is not None for row in new)


@pytest.mark.integration
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


@pytest.mark.integration
def test_the_same_run_fails_on_a_limit_the_schema_does_not_carry(tmp_path) -> None:
    """positive_data_acceptance is a real gate too: a route refusing what its schema allows is reported."""
    app = FastAPI()

    @app.get("/v1/items/{item}", responses={422: {"description": "refused"}})
    async def item(item: int) -> dict[str, int]:
        if item > 10:  # a limit that the schema leaves out, as settings once were
            raise RequestValidationError([{"loc": ["path", "item"], "msg": "too large", "type": "value_error"}])
        return {"item": item}

    with running(app) as base:
        result = schemathesis_run(base, tmp_path / "report", max_examples=30)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "Schema-valid request rejected" in output, output[-4000:]


@pytest.mark.integration
def test_the_document_carries_the_settings_limits(serve_project, embedder) -> None:
    settings = serve_project.settings(limits={"max_question_chars": 123}, serve={"max_body_bytes": 100_000})
    schemas = create_app(settings, embedder=embedder).openapi()["components"]["schemas"]
    limits = body_limits(123, 100_000)
    assert schemas["AnswerRequest"]["properties"]["question"]["maxLength"] == 123
    assert schemas["ChatMessage"]["properties"]["content"]["maxLength"] == 123
    assert schemas["ChatRequest"]["properties"]["messages"]["maxItems"] == limits.messages
    correction = schemas["FeedbackRequest"]["properties"]["correction"]["anyOf"][0]
    assert correction["maxLength"] == limits.correction_chars


@pytest.mark.parametrize(
    ("question_chars", "body_bytes"), [(2000, 65_536), (2000, 5000), (100_000, 1_000_000), (50, 9999)]
)
def test_the_largest_schema_valid_chat_fits_the_body_limit_and_one_more_message_does_not(question_chars, body_bytes):
    """The limits the schema states keep every schema-valid body under `serve.max_body_bytes` (a 413 would refuse
    a schema-valid request), however it is escaped: each character at its widest, every field at its longest."""
    limits = body_limits(question_chars, body_bytes)
    assert limits.message_chars <= question_chars
    assert limits.question_chars <= question_chars
    largest = largest_chat([largest_message(limits.message_chars)] * limits.messages)
    assert encoded_size(largest) <= body_bytes
    assert encoded_size(largest_chat([largest_message(limits.message_chars)] * (limits.messages + 1))) > body_bytes
    assert len(json.dumps({"question": "\U0010ffff" * limits.question_chars})) <= body_bytes


def test_a_body_limit_that_holds_no_chat_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"serve\.max_body_bytes.*set it to \d+ or more"):
        body_limits(2000, 4096)


def test_the_visible_text_pattern_agrees_with_the_question_check_on_every_character() -> None:
    """A one-character question is accepted exactly when the documented `pattern` matches it."""
    pattern = re.compile(visible_pattern())
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates: refused as not text, which no pattern says
        char = chr(code)
        assert (pattern.search(char) is not None) == (question_problem(char.strip(), 10) is None), hex(code)
