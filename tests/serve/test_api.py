"""The /v1 API, probes and metrics of one real server (API keys on, cap 1, queue 1)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from docs_assistant.data.store import FEEDBACK, FeatureStore
from docs_assistant.io import sha256_text
from docs_assistant.serve.app import create_app
from docs_assistant.serve.logs import ACCESS_LOGGER, JsonFormatter

from .conftest import KEY, running, stream_events, wait_ready

pytestmark = pytest.mark.integration
QUESTION = "How do I get the product running on a Linux server?"
#: a small body limit (the default is 1 MiB) that still holds two chat messages as long as a question
MAX_BODY = 65_536


@pytest.fixture(scope="module")
def settings(serve_project) -> Any:
    serve = {"api_keys": [KEY], "max_concurrency": 1, "max_queue": 1, "max_body_bytes": MAX_BODY}
    return serve_project.settings(serve=serve)


@pytest.fixture(scope="module")
def url(settings, embedder) -> Iterator[str]:
    with running(create_app(settings, embedder=embedder)) as base:
        wait_ready(base)
        yield base


@pytest.fixture
def client(url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as c:
        yield c


@pytest.fixture
def anonymous(url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


def field_of(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [err["loc"] for err in response.json()["detail"]]


def post_raw(client: httpx.Client, path: str, body: str) -> httpx.Response:
    """`body` sent as it is: JSON that Python's decoder accepts and `json=` would never write (NaN, escapes)."""
    return client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})


def local_address(response: httpx.Response) -> Any:
    return response.extensions["network_stream"].get_extra_info("client_addr")


def assert_connection_reused(client: httpx.Client, refused: httpx.Response) -> None:
    """The refusal left the connection open and usable: the next request goes over the very same socket."""
    assert refused.headers.get("connection") != "close"
    after = client.get("/healthz")
    assert after.status_code == 200
    assert local_address(after) == local_address(refused)


def chat_body(content: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


def test_probes_and_metrics_are_open_without_a_key(anonymous) -> None:
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert set(ready.json()["phases"]) == {"imports", "prompts", "model", "index", "warmup"}
    assert anonymous.get("/metrics").status_code == 200


def test_answer_has_sources_without_paths(client, serve_project) -> None:
    response = client.post("/v1/answer", json={"question": QUESTION})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "id",
        "answer",
        "sources",
        "prompt",
        "model",
        "index_version",
        "timings_ms",
        "tokens",
        "guardrail",
    }
    assert body["answer"]
    assert body["model"]["name"] == "tiny-random-llama"
    assert body["prompt"]["id"] == "rag-answer"
    assert body["tokens"]["completion"] > 0
    assert len(body["sources"]) == 5
    for source in body["sources"]:
        assert set(source) == {"chunk_id", "doc_id", "title", "source", "score"}
        assert not source["source"].startswith(("/", "~"))
    assert str(serve_project.root) not in response.text
    assert "/tmp" not in response.text


def test_request_id_is_echoed_or_made(client) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "req-42"}).headers["x-request-id"] == "req-42"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    assert made != "bad id\twith spaces"
    assert len(made) == 32


def test_openai_client_gets_a_chat_completion_and_a_stream(url) -> None:
    oa = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=60)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    done = oa.chat.completions.create(model="docs-assistant", messages=messages, max_tokens=24)
    assert done.object == "chat.completion"
    assert done.model == "tiny-random-llama"
    # the tiny random model never ends on its own: it stops at the limit (test_stream_endings has "stop")
    assert done.choices[0].finish_reason == "length"
    text = done.choices[0].message.content
    assert text
    assert done.usage.completion_tokens == 24
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens

    stream = oa.chat.completions.create(
        model="docs-assistant",
        messages=messages,
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    events = list(stream)
    assert all(e.object == "chat.completion.chunk" for e in events)
    pieces = [e.choices[0].delta.content or "" for e in events if e.choices]
    assert "".join(pieces) == text  # greedy decoding: the stream carries the same answer
    assert [e.choices[0].finish_reason for e in events if e.choices][-1] == "length"
    assert events[-1].usage.completion_tokens == done.usage.completion_tokens


def test_the_openai_client_lists_the_served_model_and_any_model_name_is_an_alias(url) -> None:
    oa = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=60)
    listed = [m.id for m in oa.models.list()]
    assert listed == ["tiny-random-llama"]  # the one model, by the name completions report
    messages = [{"role": "user", "content": QUESTION}]
    done = oa.chat.completions.create(model="any-name-at-all", messages=messages, max_tokens=4)
    assert done.model == listed[0]  # documented: every name is an alias of the served model


def test_models_need_the_key_like_every_v1_call(anonymous) -> None:
    assert anonymous.get("/v1/models").status_code == 401


def test_stream_ends_with_done(client) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)
    assert json.loads(lines[0][6:])["choices"][0]["delta"]["role"] == "assistant"


@pytest.mark.parametrize("max_tokens", [1, 3])
@pytest.mark.parametrize("stream", [False, True])
def test_a_chat_cut_off_by_max_tokens_finishes_with_length(client, stream: bool, max_tokens: int) -> None:
    body = chat_body(QUESTION, max_tokens=max_tokens, stream=stream, stream_options={"include_usage": True})
    if not stream:
        body.pop("stream_options")
        done = client.post("/v1/chat/completions", json=body).json()
        assert done["usage"]["completion_tokens"] == max_tokens
        assert done["choices"][0]["finish_reason"] == "length"
        return
    events = stream_events(client, body)
    finishes = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert finishes[:-1] == [None] * (len(finishes) - 1)
    assert finishes[-1] == "length"
    assert events[-1]["usage"]["completion_tokens"] == max_tokens


def test_chat_without_a_user_message_is_422(client) -> None:
    body = {"model": "m", "messages": [{"role": "system", "content": "hi"}]}
    assert field_of(client.post("/v1/chat/completions", json=body)) == [["body", "messages"]]


@pytest.mark.parametrize(
    ("messages", "field", "message"),
    [
        ([{"role": "user", "content": "\u200b"}, {"role": "user", "content": QUESTION}], [0, "content"], "visible"),
        ([{"role": "user"}, {"role": "user", "content": QUESTION}], [0, "content"], "must not be empty"),
        ([{"role": "user", "content": [{"type": "text", "text": "a"}] * 2}], [0, "content"], "at most 1 item"),
        ([{"role": "system", "content": "x" * 2001}, {"role": "user", "content": "hi"}], [0, "content"], "limit is 2000"),
        ([{"role": "user", "content": "hi"}] * 3, [], "raise it for longer chats"),
    ],
    ids=["earlier-user-invisible", "user-without-content", "two-parts", "long-system", "too-many"],
)  # fmt: skip
def test_chat_messages_beyond_the_documented_bounds_are_422(client, messages, field, message) -> None:
    """What the schema says of messages is what is refused: every user message may be the question, every
    message as long as one, as many as the body holds (the schema's `if`/`then`, maxLength and maxItems)."""
    response = client.post("/v1/chat/completions", json={"model": "m", "messages": messages})
    assert field_of(response)[0][: len(field) + 2] == ["body", "messages", *field], response.text
    assert message in response.text


def test_an_integral_float_is_an_integer_as_json_schema_says(client) -> None:
    """`5.0` is a JSON Schema integer: refusing it would refuse what the document accepts."""
    response = client.post("/v1/chat/completions", json=chat_body(QUESTION, max_tokens=2.0, seed=7.0))
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] <= 2
    assert field_of(client.post("/v1/chat/completions", json=chat_body(QUESTION, max_tokens=2.5))) == [
        ["body", "max_tokens"]
    ]


def test_feedback_is_appended_to_the_feature_store(client, settings) -> None:
    served = client.post("/v1/answer", json={"question": QUESTION}).json()
    answer_id = served["id"]
    response = client.post("/v1/feedback", json={"answer_id": answer_id, "rating": -1, "correction": "Use the .deb"})
    assert response.status_code == 201, response.text
    feedback_id = response.json()["id"]
    rows = FeatureStore(settings.paths.store_uri).read(FEEDBACK).to_pylist()
    (row,) = [r for r in rows if r["id"] == feedback_id]
    assert row["answer_id"] == answer_id
    assert row["rating"] == -1
    assert row["correction"] == "Use the .deb"
    # the rated question and answer travel with the rating, so fine-tuning can learn from the correction
    assert (row["question"], row["answer"]) == (QUESTION, served["answer"])
    assert len(row["content_hash"]) == 64
    assert row["created_at"].tzinfo is not None


def test_feedback_text_is_redacted_before_it_is_stored(client, settings) -> None:
    question = f"{QUESTION} Reply to jane.doe@example.com please."
    served = client.post("/v1/answer", json={"question": question}).json()
    correction = "Use the key sk-live-ABCDEF0123456789abcd or ask ops@harbor-relay.example, +1 415-555-0132."
    body = {"answer_id": served["id"], "rating": -1, "correction": correction}
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 201, response.text
    rows = FeatureStore(settings.paths.store_uri).read(FEEDBACK).to_pylist()
    (row,) = [r for r in rows if r["id"] == response.json()["id"]]
    assert row["question"] == f"{QUESTION} Reply to [redacted email] please."
    assert row["correction"] == "Use the key [redacted key] or ask [redacted email], [redacted phone]."
    stored = json.dumps(row, default=str)
    assert not any(secret in stored for secret in ("jane.doe", "sk-live", "ops@harbor", "415-555"))
    # the hash is of the row as stored, the way `validate` recomputes it from the table
    assert row["content_hash"] == sha256_text(served["id"], "-1", row["correction"])


def test_feedback_for_an_unknown_answer_is_404(client, settings) -> None:
    before = FeatureStore(settings.paths.store_uri).read(FEEDBACK).num_rows
    response = client.post("/v1/feedback", json={"answer_id": "ans-never-served", "rating": 1})
    assert response.status_code == 404
    assert "ans-never-served" in response.json()["detail"]
    assert FeatureStore(settings.paths.store_uri).read(FEEDBACK).num_rows == before


@pytest.mark.parametrize("rating", [2, -2, "1", 1.5, True])
def test_feedback_rating_must_be_minus_one_zero_or_one(client, rating) -> None:
    """1.0 is not here: it is the integer 1 to JSON Schema, so the documented type accepts it (as the service does)."""
    assert field_of(client.post("/v1/feedback", json={"answer_id": "a", "rating": rating})) == [["body", "rating"]]


def test_metrics_count_requests_and_name_the_model_and_prompt(client, anonymous) -> None:
    client.post("/v1/answer", json={"question": QUESTION})
    text = anonymous.get("/metrics").text
    assert 'docs_assistant_requests_total{endpoint="/v1/answer",method="POST",status="200"}' in text
    assert 'docs_assistant_request_duration_seconds_bucket{endpoint="/v1/answer"' in text
    (info,) = [line for line in text.splitlines() if line.startswith("docs_assistant_build_info{")]
    assert 'model="tiny-random-llama"' in info
    assert 'prompt_id="rag-answer"' in info
    assert 'prompt_version="1"' in info
    assert 'prompt_hash="' in info
    assert 'adapter=""' in info
    assert 'docs_assistant_startup_phase_seconds{phase="warmup"}' in text
    assert "docs_assistant_generated_tokens_total" in text
    assert "docs_assistant_retrieval_duration_seconds_count" in text
    assert "docs_assistant_in_flight_requests" in text


def test_access_log_is_one_json_line_per_request(client, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.get("/healthz", headers={"X-Request-ID": "log-me"})
        # the server thread may log just after the client has its response: wait for it, boundedly
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            getattr(r, "request_id", None) == "log-me" for r in caplog.records
        ):
            time.sleep(0.02)
    (record,) = [r for r in caplog.records if r.name == ACCESS_LOGGER and r.request_id == "log-me"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "log-me"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)
    assert line["duration_ms"] >= 0
    assert KEY not in JsonFormatter().format(record)


# --- bad input: each refused with the right status, naming the field -------------------------------


def test_malformed_json_is_422(client) -> None:
    response = client.post("/v1/answer", content=b'{"question": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_wrong_type_is_422_naming_the_field(client) -> None:
    assert field_of(client.post("/v1/answer", json={"question": 42})) == [["body", "question"]]


def test_missing_field_is_422_naming_the_field(client) -> None:
    assert field_of(client.post("/v1/answer", json={})) == [["body", "question"]]


def test_unknown_field_is_422(client) -> None:
    assert field_of(client.post("/v1/answer", json={"question": "q", "top_k": 50})) == [["body", "top_k"]]


def test_empty_question_is_422(client) -> None:
    response = client.post("/v1/answer", json={"question": "   \n"})
    assert field_of(response) == [["body", "question"]]
    assert "empty" in response.text


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("\u200b\u200e\u2060 \ufeff", "must contain visible text"),  # zero-width, bidi mark, word joiner, BOM
        ("hi \ud800", "lone surrogate"),  # the embedder failed on it: a 500 before
    ],
    ids=["invisible", "lone-surrogate"],
)
def test_a_question_that_is_not_visible_text_is_422_naming_the_field(client, question: str, message: str) -> None:
    body = json.dumps({"question": question}).encode()  # ASCII JSON escapes: a lone surrogate is legal JSON
    response = client.post("/v1/answer", content=body, headers={"Content-Type": "application/json"})
    assert field_of(response) == [["body", "question"]]
    assert message in response.text
    assert client.get("/healthz").status_code == 200  # the connection and the server stay usable


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/answer", '{"question": "hi", "temperature": %s}', "temperature"),  # unknown field, echoed
        ("/v1/answer", '{"question": %s}', "question"),
        ("/v1/chat/completions", '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": %s}',
         "temperature"),
        ("/v1/chat/completions", '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_p": %s}',
         "top_p"),
        ("/v1/feedback", '{"answer_id": "a", "rating": %s}', "rating"),
    ],
    ids=["answer-extra", "answer-question", "chat-temperature", "chat-top_p", "feedback-rating"],
)  # fmt: skip
def test_a_number_json_cannot_carry_is_422_naming_the_field(client, path, body, field, number) -> None:
    """Python's JSON decoder accepts NaN and Infinity; the 422 echoing them could not be encoded (a 500)."""
    response = post_raw(client, path, body % number)
    assert field_of(response) == [["body", field]]
    json.loads(response.text, parse_constant=lambda token: pytest.fail(f"{token} in the response"))
    assert_connection_reused(client, response)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/feedback", {"answer_id": "\ud800", "rating": 1}, ["answer_id"]),
        ("/v1/feedback", {"answer_id": "a", "rating": 1, "correction": "Use \udc00 it"}, ["correction"]),
        ("/v1/chat/completions", chat_body("hi \ud800"), ["messages", 0, "content"]),
        ("/v1/chat/completions", chat_body([{"type": "text", "text": "hi \ud800"}]), ["messages", 0, "content"]),
        ("/v1/chat/completions", chat_body("hi") | {"messages": [{"role": "system", "content": "\udfff"},
                                                                 {"role": "user", "content": "hi"}]},
         ["messages", 0, "content"]),
        ("/v1/chat/completions", chat_body("hi", user="\ud800"), ["user"]),
        ("/v1/chat/completions", chat_body("hi", stop=["a", "\ud800"]), ["stop"]),
    ],
    ids=["feedback-answer_id", "feedback-correction", "chat-content", "chat-content-part", "chat-system",
         "chat-user", "chat-stop"],
)  # fmt: skip
def test_a_lone_surrogate_in_any_text_field_is_422_naming_the_field(client, path, body, field) -> None:
    response = post_raw(client, path, json.dumps(body))  # ASCII JSON: the surrogate travels as its escape
    assert field_of(response) == [["body", *field]]
    assert "lone surrogate" in response.text
    response.json()  # the echoed input is valid JSON and UTF-8
    assert_connection_reused(client, response)


@pytest.mark.parametrize(
    ("content", "message"),
    [("x" * 2001, "the limit is 2000"), ("  ", "must not be empty"), ("\u200b", "visible text")],
    ids=["too-long", "empty", "invisible"],
)
def test_a_chat_question_refused_names_the_message_it_is_in(client, content: str, message: str) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]
    response = client.post("/v1/chat/completions", json={"model": "m", "messages": messages})
    assert field_of(response) == [["body", "messages", 1, "content"]]
    assert message in response.text


def test_oversized_question_is_422(client, settings) -> None:
    limit = settings.limits.max_question_chars
    response = client.post("/v1/answer", json={"question": "x" * (limit + 1)})
    assert field_of(response) == [["body", "question"]]
    assert f"the limit is {limit}" in response.text


@pytest.mark.parametrize(
    ("path", "stream", "field"),
    [
        ("/v1/answer", False, ["body", "question"]),
        ("/v1/chat/completions", False, ["body", "messages", 0, "content"]),
        ("/v1/chat/completions", True, ["body", "messages", 0, "content"]),
    ],
)
def test_a_question_the_models_input_cannot_hold_is_422_before_any_answer(
    client, settings, path: str, stream: bool, field: list[Any]
) -> None:
    """Within `limits.max_question_chars`, but with the prompt's instructions over `model.max_input_tokens`:
    context fitting cannot drop the question, so it is refused as the body is read (not a 500 mid-answer)."""
    question = "word " * (settings.limits.max_question_chars // 5)
    body = {"question": question}
    if path != "/v1/answer":
        body = {"model": "m", "messages": [{"role": "user", "content": question}], "stream": stream}
    response = client.post(path, json=body)
    assert field_of(response) == [field]
    assert "too long for the model's input" in response.text
    assert f"over the input budget of {settings.model.max_input_tokens}" in response.text
    assert client.post("/v1/answer", json={"question": QUESTION}).status_code == 200  # the service goes on


def test_oversized_body_is_413(client) -> None:
    response = client.post("/v1/answer", json={"question": "x" * MAX_BODY})
    assert response.status_code == 413


def test_oversized_streamed_body_without_length_is_413(client) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(MAX_BODY // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = client.post("/v1/answer", content=body(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", f"Basic {KEY}", "Bearer", f"Bearer {KEY}x"])
def test_missing_or_wrong_api_key_is_401(anonymous, header) -> None:
    headers = {"Authorization": header} if header else {}
    response = anonymous.post("/v1/answer", json={"question": QUESTION}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert KEY not in response.text


def test_rejections_are_counted_by_reason(anonymous) -> None:
    anonymous.post("/v1/answer", json={"question": QUESTION})
    assert 'docs_assistant_rejected_total{reason="unauthorized"}' in anonymous.get("/metrics").text


def test_a_service_with_a_feedback_dir_keeps_feedback_as_lines_that_validate_ingests(
    serve_project, settings, embedder, tiny_llm, tmp_path
) -> None:
    """The deployed image: its store is read-only, so feedback goes to `paths.feedback_dir`, and the exported
    file (`env feedback` copies it into data/feedback/) reaches the feature store through validate, carrying
    the question and answer it rates so fine-tuning can use it. Last in the module: it ingests into the store."""
    from docs_assistant.data.validate import run_validation

    log_dir = tmp_path / "feedback"
    deployed = settings.model_copy(update={"paths": settings.paths.model_copy(update={"feedback_dir": log_dir})})
    store = FeatureStore(settings.paths.store_uri)
    stored_before = store.read(FEEDBACK).num_rows
    with running(create_app(deployed, embedder=embedder, llm=tiny_llm)) as url:
        wait_ready(url)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
            served = client.post("/v1/answer", json={"question": QUESTION}).json()
            posted = client.post("/v1/feedback", json={"answer_id": served["id"], "rating": 1, "correction": "Yes."})
            assert posted.status_code == 201, posted.text
    assert store.read(FEEDBACK).num_rows == stored_before  # the store was not written
    (log,) = log_dir.glob("*.jsonl")  # one file per process
    (line,) = log.read_text(encoding="utf-8").splitlines()
    row = json.loads(line)
    assert row["id"] == posted.json()["id"]
    assert (row["answer_id"], row["rating"], row["correction"]) == (served["id"], 1, "Yes.")
    assert (row["question"], row["answer"]) == (QUESTION, served["answer"])

    exported = settings.paths.data_dir / "feedback" / f"dev-{log.name}"
    exported.parent.mkdir(exist_ok=True)
    exported.write_bytes(log.read_bytes())
    result = run_validation(settings)
    assert result.failures() == [], result.failures()
    (ingested,) = [r for r in store.read(FEEDBACK).to_pylist() if r["id"] == row["id"]]
    assert (ingested["question"], ingested["answer"], ingested["correction"]) == (QUESTION, served["answer"], "Yes.")
    assert ingested["content_hash"] == sha256_text(served["id"], "1", "Yes.")  # as the service computes it
    run_validation(settings)  # an export taken again later: rows already ingested are not added twice
    assert [r["id"] for r in store.read(FEEDBACK).to_pylist()].count(row["id"]) == 1
