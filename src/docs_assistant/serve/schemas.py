"""Request and response bodies. Requests forbid unknown fields and coerce nothing (strict types).

Every string a request carries must be text (no lone surrogate) and every number finite: Python's JSON
decoder accepts `"\\ud800"`, `NaN` and `Infinity`, and each used to fail later, in the embedder, LanceDB
or the response encoder, as a 500. Refused here, they are 422s that name the field.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from docs_assistant.rag.questions import text_problem

#: feedback ratings: -1 (wrong or unhelpful), 0 (neutral), 1 (helpful)
Rating = Annotated[int, Field(ge=-1, le=1, strict=True)]


def _strings(value: Any) -> list[str]:
    """The strings a field's input holds itself (nested models check their own fields)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        """Before the field's own checks, so a length limit does not report a surrogate as unparsable."""
        for text in _strings(value):
            if problem := text_problem(text):
                raise ValueError(problem)
        return value


class AnswerRequest(_Request):
    question: str


class Source(BaseModel):
    chunk_id: str
    doc_id: str
    title: str
    source: str
    score: float


class Guardrail(BaseModel):
    blocked: str | None = Field(description="why the answer was refused, e.g. 'input:prompt_injection'")
    redactions: dict[str, int] = Field(description="PII redacted from the answer, by kind")


class AnswerResponse(BaseModel):
    id: str
    answer: str
    sources: list[Source]
    prompt: dict[str, str]
    model: dict[str, Any]
    index_version: int
    timings_ms: dict[str, float]
    tokens: dict[str, int]
    guardrail: Guardrail


class FeedbackRequest(_Request):
    answer_id: str = Field(min_length=1, max_length=200)
    rating: Rating
    correction: str | None = Field(default=None, max_length=20_000)


class FeedbackResponse(BaseModel):
    id: str
    answer_id: str


class TextPart(_Request):
    type: Literal["text"]
    text: str


class ChatMessage(_Request):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _content_is_text(cls, value: Any) -> Any:
        """Checked before the union splits it, so a lone surrogate is one error naming `content`, not one per
        alternative the union tried (`str`, `list[TextPart]`)."""
        parts = value if isinstance(value, list) else [value]
        texts = [p.get("text") if isinstance(p, dict) else p for p in parts]
        for text in texts:
            if isinstance(text, str) and (problem := text_problem(text)):
                raise ValueError(problem)
        return value

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(_Request):
    include_usage: bool = False


class ChatRequest(_Request):
    """OpenAI's chat-completions request; sampling knobs are accepted and the server's settings decide."""

    model: str = Field(
        description="any name: the service serves one model (`GET /v1/models` lists it), so every name is an alias "
        "of it, and the response's `model` says which one answered"
    )
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: Literal[1] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None


class ModelCard(BaseModel):
    """One served model, as OpenAI's `GET /v1/models` lists it."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    """Every refusal: `detail` is a sentence, or for 422 a list naming each bad field."""

    model_config = ConfigDict(extra="allow")
    detail: str | list[dict[str, Any]]


class Readiness(BaseModel):
    ready: bool
    phase: str = Field(description="the start-up phase in progress, 'ready', or 'draining' once stopping")
    phases: dict[str, float] = Field(description="finished start-up phases and their durations in ms")
    error: str | None = None


class ChatChoice(BaseModel):
    index: int
    message: dict[str, Any]
    finish_reason: Literal["stop", "length", "content_filter"]


class ChatCompletion(BaseModel):
    """The non-streamed response; with `stream: true` the same content arrives as `text/event-stream`."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: dict[str, int]


def json_safe(value: Any) -> Any:
    """`value` (already JSON-shaped) with what strict JSON cannot carry spelled out: a non-finite float as
    the token that was sent (`NaN`, `Infinity`), a lone surrogate as its escape. A 422 echoes the bad input,
    and a response that cannot be encoded would turn the refusal into a 500 and cut the connection."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def error_response(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: the statuses each kind of route may answer besides success, for the OpenAPI document
REFUSALS: dict[int | str, dict[str, Any]] = {
    400: error_response("a body that cannot be decoded at all (not UTF-8)"),
    401: error_response("missing or invalid API key (when keys are configured)"),
    413: {"description": "request body over `serve.max_body_bytes` (refused unread)", "content": {"text/plain": {}}},
    422: error_response(
        "malformed JSON, a wrong type, a missing or unknown field, a string that is not text (a lone surrogate), "
        "a number that is not finite (NaN, Infinity), an empty, invisible-only or too long question"
    ),
}
GENERATION_REFUSALS: dict[int | str, dict[str, Any]] = REFUSALS | {
    429: error_response("every worker busy and the queue full; see Retry-After"),
    503: error_response("not ready yet, or draining before a stop; see Retry-After"),
    504: error_response("no answer within `serve.request_timeout_s`"),
}
FEEDBACK_REFUSALS: dict[int | str, dict[str, Any]] = REFUSALS | {
    404: error_response("answer id not served recently"),
    503: error_response("draining before a stop; see Retry-After"),
}
