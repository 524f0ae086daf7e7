"""OpenAI chat-completions shapes around a RAG answer: the last user message is the question.

Streaming sends the finished answer as `chat.completion.chunk` events (role, content pieces, finish,
optional usage) then `data: [DONE]`; generation itself is not token-streamed yet.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

from docs_assistant.serve.schemas import ChatRequest

_PIECES = re.compile(r"\S+\s*|\s+")


def question_of(request: ChatRequest) -> str | None:
    users = [m for m in request.messages if m.role == "user"]
    return users[-1].text() if users else None


def _usage(answer: Any) -> dict[str, int]:
    prompt, completion = answer.tokens.get("prompt", 0), answer.tokens.get("completion", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(answer: Any, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{answer.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}],
        "usage": _usage(answer),
    }


def chunks(answer: Any, model: str, *, include_usage: bool) -> Iterator[str]:
    """The answer as server-sent events."""
    base = {"id": f"chatcmpl-{answer.id}", "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = model

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]} | extra
        return f"data: {json.dumps(body)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in _PIECES.findall(answer.text):
        yield event({"content": piece})
    yield event({}, "stop")
    if include_usage:
        yield f"data: {json.dumps(base | {'choices': [], 'usage': _usage(answer)})}\n\n"
    yield "data: [DONE]\n\n"
