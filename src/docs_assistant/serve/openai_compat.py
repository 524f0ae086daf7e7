"""OpenAI chat-completions shapes around a RAG answer: the last user message is the question.

A stream sends `chat.completion.chunk` events as the model generates (role first, then content pieces
already screened by the guardrails, then the finish reason and optional usage), then `data: [DONE]`.
A guardrail block finishes with `content_filter`, as OpenAI's API does. A failure after the stream has
started cannot change the status code any more, so it is sent as an `error` event, which the official
client raises as `APIError`.
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


def question_of(request: ChatRequest) -> tuple[Loc, str] | None:
    """The last user message's text and where it is (`("messages", i, "content")`, for a 422), or None."""
    users = [i for i, m in enumerate(request.messages) if m.role == "user"]
    if not users:
        return None
    return ("messages", users[-1], "content"), request.messages[users[-1]].text()


def _usage(answer: Any) -> dict[str, int]:
    prompt, completion = answer.tokens.get("prompt", 0), answer.tokens.get("completion", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish_reason(answer: Any) -> str:
    return "content_filter" if answer.guardrail["blocked"] else "stop"


def completion(answer: Any, model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": answer.text}
    return {
        "id": f"chatcmpl-{answer.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(answer)}],
        "usage": _usage(answer),
    }


async def sse(stream: Any, model: str, *, include_usage: bool, timeout: Callable[[], Exception]) -> AsyncIterator[str]:
    """Server-sent events for an admitted `AnswerStream`."""
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
        yield event({"error": {"message": str(timeout().detail), "type": "timeout", "code": 504}})
    except DocsAssistantError as exc:
        log.error("stream failed", extra={"error": str(exc)})
        yield event({"error": {"message": exc.message, "type": "server_error", "code": 500}})
    else:
        yield delta({}, _finish_reason(stream.answer))
        if include_usage:
            yield event(base | {"choices": [], "usage": _usage(stream.answer)})
    yield "data: [DONE]\n\n"
