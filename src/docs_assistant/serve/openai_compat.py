"""OpenAI chat-completions shapes around a RAG answer: the last user message is the question.

A stream sends `chat.completion.chunk` events as the model generates (role first, then content pieces
already screened by the guardrails, then the finish reason and optional usage), then `data: [DONE]`.
A guardrail block finishes with `content_filter`, as OpenAI's API does; an answer that used every token
it was allowed finishes with `length`, any other with `stop`. A failure after the stream has started
cannot change the status code any more, so any exception ends it with an `error` event, which the
official client raises as `APIError`, then `data: [DONE]`; the status it stands for (500, or 504 past the
deadline) goes to `on_failure`, so metrics and the access log count the request as failed, not as a 200.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from docs_assistant.errors import DocsAssistantError
from docs_assistant.serve.limits import DeadlineExceededError
from docs_assistant.serve.schemas import ChatRequest
from docs_assistant.serve.service import Loc

log = logging.getLogger("docs_assistant.serve")
#: what a client learns of an unexpected failure; the server log has the exception
STREAM_FAILED = "the answer failed while it was being generated (the server log has the details)"


def question_of(request: ChatRequest) -> tuple[Loc, str] | None:
    """The last user message's text and where it is (`("messages", i, "content")`, for a 422), or None."""
    users = [i for i, m in enumerate(request.messages) if m.role == "user"]
    if not users:
        return None
    return ("messages", users[-1], "content"), request.messages[users[-1]].text()


def _usage(answer: Any) -> dict[str, int]:
    prompt, completion = answer.tokens.get("prompt", 0), answer.tokens.get("completion", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish_reason(answer: Any, limit: int) -> str:
    """`limit`: the tokens the answer was allowed; one that used them all was cut off (an end-of-sequence
    token generated exactly at the limit reads as `length` too: a backend reports only the count)."""
    if answer.guardrail["blocked"]:
        return "content_filter"
    return "length" if answer.tokens.get("completion", 0) >= limit else "stop"


def completion(answer: Any, model: str, limit: int) -> dict[str, Any]:
    message = {"role": "assistant", "content": answer.text}
    return {
        "id": f"chatcmpl-{answer.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(answer, limit)}],
        "usage": _usage(answer),
    }


async def sse(
    stream: Any,
    model: str,
    *,
    limit: int,
    include_usage: bool,
    timeout: Callable[[], Any],
    on_failure: Callable[[int], None],
) -> AsyncIterator[str]:
    """Server-sent events for an admitted `AnswerStream` that was allowed `limit` tokens."""
    base = {"id": f"chatcmpl-{stream.answer_id}", "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = model

    def event(body: dict[str, Any]) -> str:
        return f"data: {json.dumps(body)}\n\n"

    def delta(content: dict[str, Any], finish: str | None = None) -> str:
        return event(base | {"choices": [{"index": 0, "delta": content, "finish_reason": finish}]})

    yield delta({"role": "assistant", "content": ""})
    try:
        async for piece in stream:
            yield delta({"content": piece})
    except DeadlineExceededError:
        on_failure(504)
        log.error("stream timed out", extra={"answer_id": stream.answer_id})
        yield event({"error": {"message": str(timeout().detail), "type": "timeout", "code": 504}})
    except Exception as exc:  # whatever failed, the client gets an end it can read, not a cut connection
        on_failure(500)
        log.exception("stream failed", extra={"answer_id": stream.answer_id, "error": str(exc)})
        message = exc.message if isinstance(exc, DocsAssistantError) else STREAM_FAILED
        yield event({"error": {"message": message, "type": "server_error", "code": 500}})
    else:
        yield delta({}, _finish_reason(stream.answer, limit))
        if include_usage:
            yield event(base | {"choices": [], "usage": _usage(stream.answer)})
    yield "data: [DONE]\n\n"
