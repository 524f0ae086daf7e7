"""How a chat completion ends: `stop`, `length`, or, when generation fails mid-stream, an error event.

The model is the real tiny one behind the app's own `llm` argument. For some questions it streams its
answer and more words, then fails, as a backend that drops mid-answer or a device out of memory does (the
tiny model writes symbols without whitespace, which the streamer hands over only at the end; the words let
some text reach the client before the failure). For others it ends before its token limit, as a model
that generates its end-of-sequence token does (the tiny random model never does). Asked in Chinese, it
goes on with a Chinese answer, character by character, as a multilingual model does: text without spaces
must reach the client while it is being generated (issue 19).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import openai
import pytest

from docs_assistant.errors import ModelError
from docs_assistant.serve.app import create_app
from docs_assistant.serve.logs import ACCESS_LOGGER
from docs_assistant.serve.openai_compat import STREAM_FAILED

from .conftest import iter_stream_events, running, stream_events, wait_ready

pytestmark = pytest.mark.integration
#: streamed after the model's own text and before a planted failure: longer than what the guardrails hold back
TAIL = " and then" * 12
SHORT = 3
LIMIT = 16
FAILURES = {
    "crash": (RuntimeError("CUDA out of memory (planted)"), STREAM_FAILED),
    "backend": (ModelError("the model backend went away (planted)"), "the model backend went away (planted)"),
}
#: what the model goes on with when asked in Chinese: no spaces anywhere
CJK_ANSWER = "先安装命令行工具，然后运行初始化命令并检查配置文件中的签名密钥。"
CJK_BEFORE_WAIT = 8  # characters generated before the model waits for the client to have some
CJK_WAIT_S = 20.0
REQUESTS = 'docs_assistant_requests_total{endpoint="/v1/chat/completions",method="POST",status="%s"}'


class EndingLLM:
    """The real model; a streamed answer to a question naming a failure in `FAILURES` fails after its text and
    `TAIL`; one asking for a short answer ends after `SHORT` tokens, as if the model had generated its EOS."""

    def __init__(self, llm: Any):
        self.llm, self.info = llm, llm.info
        self.client_has_cjk = threading.Event()  # set by a test when Chinese text reached its client
        self.waits: list[bool] = []

    def generate(self, prompt: str, *, max_new_tokens: int | None = None, on_text: Any = None) -> Any:
        question = prompt.rsplit("Question:", 1)[-1].lower()
        if "short" in question:
            return self.llm.generate(prompt, max_new_tokens=SHORT, on_text=on_text)
        generation = self.llm.generate(prompt, max_new_tokens=max_new_tokens, on_text=on_text)
        if "中文" in question and on_text is not None:
            for i, ch in enumerate(CJK_ANSWER):
                if i == CJK_BEFORE_WAIT:  # the rest only once the client shows it got some, or after a timeout
                    self.waits.append(self.client_has_cjk.wait(CJK_WAIT_S))
                on_text(ch)
            return replace(generation, text=generation.text + CJK_ANSWER)
        failure = next((exc for name, (exc, _) in FAILURES.items() if name in question), None)
        if failure is None or on_text is None:
            return generation
        for word in TAIL.split(" ")[1:]:
            on_text(" " + word)
        raise failure


@pytest.fixture(scope="module")
def ending(tiny_llm) -> EndingLLM:
    return EndingLLM(tiny_llm)


@pytest.fixture(scope="module")
def url(serve_project, embedder, ending) -> Iterator[str]:
    settings = serve_project.settings(model={"max_new_tokens": LIMIT})
    with running(create_app(settings, embedder=embedder, llm=ending)) as base:
        wait_ready(base)
        yield base


def chat(question: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": question}], **extra}


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for_record(caplog: pytest.LogCaptureFixture, logger: str, status: int) -> logging.LogRecord:
    """The server thread logs just after the client has the last byte: wait for the line, boundedly."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [r for r in caplog.records if r.name == logger and getattr(r, "status", None) == status]
        if found:
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"no {logger} record with status {status}")


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failure_mid_stream_ends_with_an_error_event_and_done_and_counts_as_500(client, caplog, failure: str) -> None:
    ok_before, failed_before = metric(client, REQUESTS % 200), metric(client, REQUESTS % 500)
    with caplog.at_level(logging.INFO):
        body = chat(f"Please {failure} while answering: how do I install it?", stream=True)
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200  # sent before the failure, as a stream's status always is
            lines = [line for line in response.iter_lines() if line]
        access = wait_for_record(caplog, ACCESS_LOGGER, 500)

    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert any(e.get("choices") and e["choices"][0]["delta"].get("content") for e in events[1:-1])  # mid-stream
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1])  # no finish: it did not finish
    assert events[-1] == {"error": {"message": FAILURES[failure][1], "type": "server_error", "code": 500}}

    assert metric(client, REQUESTS % 500) == failed_before + 1
    assert metric(client, REQUESTS % 200) == ok_before  # the 200 on the wire is not counted as a success
    assert (access.path, access.sent_status) == ("/v1/chat/completions", 200)
    (failed,) = [r for r in caplog.records if r.getMessage() == "stream failed"]
    assert failed.levelno == logging.ERROR
    assert "planted" in failed.error

    # the stream ended properly: the same connection serves the next request
    after = client.post("/v1/chat/completions", json=chat("How do I install it?", max_tokens=2))
    assert after.status_code == 200


def test_the_openai_client_raises_on_the_error_event(url) -> None:
    oa = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
    stream = oa.chat.completions.create(**chat("Please crash while answering: how do I install it?"), stream=True)
    with pytest.raises(openai.APIError, match="failed while it was being generated"):
        list(stream)


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_that_ends_before_its_limit_finishes_with_stop(client, stream: bool) -> None:
    body = chat("A short answer please: how do I install it?", max_tokens=SHORT + 5, stream=stream)
    if not stream:
        done = client.post("/v1/chat/completions", json=body).json()
        assert done["usage"]["completion_tokens"] == SHORT
        assert done["choices"][0]["finish_reason"] == "stop"
        return
    events = stream_events(client, body)
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("max_tokens", [None, 10_000])
def test_the_limit_is_the_setting_unless_the_request_asks_for_less(client, max_tokens: int | None) -> None:
    """No `max_tokens`, or one over `model.max_new_tokens`: the setting is the limit, and reaching it reads `length`."""
    extra = {} if max_tokens is None else {"max_tokens": max_tokens}
    done = client.post("/v1/chat/completions", json=chat("How do I install it?", **extra)).json()
    assert done["usage"]["completion_tokens"] == LIMIT
    assert done["choices"][0]["finish_reason"] == "length"


def test_text_without_spaces_reaches_the_client_while_it_is_generated(client, ending) -> None:
    """The model stops after a few Chinese characters until the client has some: a screen that held text
    without spaces back to the end would leave it waiting (the wait times out and the test fails)."""
    ending.client_has_cjk.clear()
    ending.waits.clear()
    contents: list[str] = []
    for event in iter_stream_events(client, chat("请用中文回答：如何安装？", stream=True)):
        content = (event.get("choices") or [{}])[0].get("delta", {}).get("content")
        if content:
            contents.append(content)
            if any("\u4e00" <= ch <= "\u9fff" for ch in content):
                ending.client_has_cjk.set()
    assert ending.waits == [True]
    assert "".join(contents).endswith(CJK_ANSWER)
    cjk_chunks = [c for c in contents if any("\u4e00" <= ch <= "\u9fff" for ch in c)]
    assert len(cjk_chunks) > 1  # not one block at the end
