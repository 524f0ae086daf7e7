"""Request and response bodies. Requests forbid unknown fields and coerce nothing (strict types).

Every string a request carries must be text (no lone surrogate) and every number finite: Python's JSON
decoder accepts `"\\ud800"`, `NaN` and `Infinity`, and each used to fail later, in the embedder, LanceDB
or the response encoder, as a 500. Refused here, they are 422s that name the field.

The OpenAPI document says what is accepted (schemathesis checks both ways, `tests/serve/test_schema.py`):
limits that are settings enter the schema through `request_models`, which the app calls with its settings;
every string and list is bounded, so that the largest body the schema allows fits `serve.max_body_bytes`
however it is escaped, and a schema-valid request never meets the 413.
"""

from __future__ import annotations

import json
import math
import sys
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator

from docs_assistant.errors import ConfigError
from docs_assistant.rag.questions import LIMIT_HINT, question_problem, text_problem

#: feedback ratings: -1 (wrong or unhelpful), 0 (neutral), 1 (helpful)
Rating = Annotated[int, Field(ge=-1, le=1, strict=True)]
#: the most bytes one character takes in a JSON body: an astral one, escaped as two `\\uXXXX` (`json.dumps`)
CHAR_BYTES = 12
#: caps of the strings the service only echoes or ignores: model and user names, a message's `name`, an id
NAME_CHARS = 64
STOP_CHARS, STOP_ITEMS = 32, 4
CORRECTION_CHARS = 20_000
INT32 = 2**31 - 1
#: the largest integer every JSON parser reads exactly (JavaScript's, and a float's): a seed's bound
SAFE_INT = 2**53 - 1
BODY_SETTING = "setting 'serve.max_body_bytes' (env DOCS_ASSISTANT_SERVE__MAX_BODY_BYTES)"


@cache
def visible_pattern() -> str:
    """A JSON Schema `pattern` that a string matches when it holds a character that is neither whitespace
    (`str.isspace`, what `strip` removes) nor a format character (Unicode category Cf): the "visible text"
    `question_problem` asks of a question. Built from this Python's Unicode tables, so both agree. Python's `re`
    (schemathesis, jsonschema) reads it as is; an ECMA engine needs its `u` flag for the astral characters."""
    invisible = [c for c in range(sys.maxunicode + 1) if chr(c).isspace() or unicodedata.category(chr(c)) == "Cf"]
    ranges: list[list[int]] = []
    for c in invisible:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])

    def char(c: int) -> str:  # BMP as an escape ECMA and Python read alike; astral ones as themselves (no such escape)
        return f"\\u{c:04X}" if c <= 0xFFFF else chr(c)

    return "[^" + "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges) + "]"


@dataclass(frozen=True)
class BodyLimits:
    """What one request may carry, from `limits.max_question_chars` and `serve.max_body_bytes`."""

    question_chars: int  # /v1/answer's question
    message_chars: int  # each chat message's content (any user message may be the question)
    messages: int  # chat messages: as many of the longest as the body holds
    correction_chars: int  # feedback's correction
    max_question_chars: int  # the setting, which question_chars and message_chars are at most

    def too_long(self, text: str, limit: int, cap: int, hint: str = LIMIT_HINT) -> str | None:
        """Why `text` is over `limit` and what to do, or None; `limit` under its `cap`: the body limit set it."""
        if len(text) <= limit:
            return None
        why = hint if limit == cap else f"a longer one may not fit {BODY_SETTING}"
        return f"too long: {len(text)} characters, the limit is {limit} ({why})"


def encoded_size(document: Any) -> int:
    """Bytes of `document` as `json.dumps` writes it: ASCII escapes and `, ` separators, the wider defaults."""
    return len(json.dumps(document).encode())


def _widest(chars: int) -> str:
    return "\U0010ffff" * chars  # CHAR_BYTES each, escaped


def largest_chat(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The largest chat request with these messages (the longest float's repr is 23 characters)."""
    return {
        "model": _widest(NAME_CHARS),
        "messages": messages,
        "max_tokens": INT32,
        "max_completion_tokens": INT32,
        "temperature": 2.2250738585072014e-308,
        "top_p": 2.2250738585072014e-308,
        "n": 1,
        "stream": False,
        "stream_options": {"include_usage": False},
        "seed": -SAFE_INT,
        "stop": [_widest(STOP_CHARS)] * STOP_ITEMS,
        "user": _widest(NAME_CHARS),
    }


def largest_message(chars: int) -> dict[str, Any]:
    """A chat message at its widest with `chars` of content (the list form and the longest role cost most)."""
    return {"role": "developer", "content": [{"type": "text", "text": _widest(chars)}], "name": _widest(NAME_CHARS)}


def body_limits(max_question_chars: int, max_body_bytes: int) -> BodyLimits:
    """The limits that keep the largest schema-valid body within `max_body_bytes`; raises ConfigError when not
    even a one-character chat message fits."""

    def fit(empty: Any, cap: int) -> int:
        return min(cap, (max_body_bytes - encoded_size(empty)) // CHAR_BYTES)

    question = fit({"question": ""}, max_question_chars)
    correction = fit({"answer_id": _widest(NAME_CHARS), "rating": -1, "correction": ""}, CORRECTION_CHARS)
    message = fit(largest_chat([largest_message(0)]), max_question_chars)
    if min(question, correction, message) < 1:
        need = encoded_size(largest_chat([largest_message(1)]))
        raise ConfigError(
            f"max_body_bytes {max_body_bytes} cannot hold a chat request of a one-character message",
            where=BODY_SETTING,
            hint=f"set it to {need} or more",
        )
    one = encoded_size(largest_chat([largest_message(message)]))
    each = encoded_size(largest_chat([largest_message(message)] * 2)) - one
    messages = 1 + (max_body_bytes - one) // each
    return BodyLimits(question, message, messages, correction, max_question_chars)


def _strings(value: Any) -> list[str]:
    """The strings a field's input holds itself (nested models check their own fields)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _document_limits(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """Each request model's `limits` into its JSON schema (`json_schema_extra`: pydantic calls it per class)."""
    document = getattr(cls, "document", None)
    limits = getattr(cls, "limits", None)
    if document is not None and limits is not None:
        document(schema, limits)


def integral(value: Any) -> Any:
    """A float with no fraction as the int it is: JSON Schema's `integer` includes `3.0`, strict pydantic does not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, json_schema_extra=_document_limits)
    #: set on the app's own subclasses (`request_models`); None: only the limits that are not settings
    limits: ClassVar[BodyLimits | None] = None

    @field_validator("*", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        """Before the field's own checks, so a length limit does not report a surrogate as unparsable."""
        for text in _strings(value):
            if problem := text_problem(text):
                raise ValueError(problem)
        return value


class AnswerRequest(_Request):
    question: str = Field(
        description="visible text (not only whitespace or format characters), without lone surrogates; the service "
        "strips it"
    )

    @field_validator("question")
    @classmethod
    def _a_question(cls, value: str) -> str:
        """What the schema says, checked as the body is read (so before a 503 while not ready): visible text, and
        the raw length as maxLength counts it (the service's own check counts the stripped one)."""
        if problem := question_problem(value.strip(), sys.maxsize):
            raise ValueError(problem)
        if cls.limits and (
            problem := cls.limits.too_long(value, cls.limits.question_chars, cls.limits.max_question_chars)
        ):
            raise ValueError(problem)
        return value

    @staticmethod
    def document(schema: dict[str, Any], limits: BodyLimits) -> None:
        schema["properties"]["question"] |= {"maxLength": limits.question_chars, "pattern": visible_pattern()}


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
    answer_id: str = Field(min_length=1, max_length=NAME_CHARS)
    rating: Rating
    correction: str | None = Field(default=None, max_length=CORRECTION_CHARS)

    _integral = field_validator("rating", mode="before")(integral)

    @field_validator("correction")
    @classmethod
    def _short_enough(cls, value: str | None) -> str | None:
        if (
            value is not None
            and cls.limits
            and (problem := cls.limits.too_long(value, cls.limits.correction_chars, CORRECTION_CHARS, "shorten it"))
        ):
            raise ValueError(problem)
        return value

    @staticmethod
    def document(schema: dict[str, Any], limits: BodyLimits) -> None:
        for alternative in schema["properties"]["correction"]["anyOf"]:
            if alternative.get("type") == "string":
                alternative["maxLength"] = limits.correction_chars


class FeedbackResponse(BaseModel):
    id: str
    answer_id: str


class TextPart(_Request):
    type: Literal["text"]
    text: str


Name = Annotated[str, Field(max_length=NAME_CHARS)]
Stop = Annotated[str, Field(max_length=STOP_CHARS)]


class ChatMessage(_Request):
    """A user message may be the question, so it needs visible text (and, as every message, at most one part)."""

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | Annotated[list[TextPart], Field(max_length=1)] | None = Field(default=None, validate_default=True)
    name: Name | None = None

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

    @field_validator("content")
    @classmethod
    def _question_if_user(cls, value: str | list[TextPart] | None, info: ValidationInfo) -> Any:
        text = "".join(part.text for part in value) if isinstance(value, list) else value or ""
        if info.data.get("role") == "user" and (problem := question_problem(text.strip(), sys.maxsize)):
            raise ValueError(problem)
        if cls.limits and (
            problem := cls.limits.too_long(text, cls.limits.message_chars, cls.limits.max_question_chars)
        ):
            raise ValueError(problem)
        return value

    @staticmethod
    def document(schema: dict[str, Any], limits: BodyLimits) -> None:
        text = {"maxLength": limits.message_chars}
        # type-specific keywords: maxLength binds the string form, items and maxItems the list form
        schema["properties"]["content"] |= text | {"items": {"properties": {"text": text}}}
        visible = {"pattern": visible_pattern()}
        question = {
            "anyOf": [
                {"type": "string"} | visible,
                {"type": "array", "items": {"properties": {"text": visible}}, "minItems": 1},
            ]
        }
        schema["if"] = {"properties": {"role": {"const": "user"}}, "required": ["role"]}
        schema["then"] = {"required": ["content"], "properties": {"content": question}}

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(_Request):
    include_usage: bool = False


class ChatRequest(_Request):
    """OpenAI's chat-completions request; sampling knobs are accepted and the server's settings decide."""

    model: Name = Field(
        description="any name: the service serves one model (`GET /v1/models` lists it), so every name is an alias "
        "of it, and the response's `model` says which one answered"
    )
    messages: list[ChatMessage] = Field(min_length=1, description="the last one with role 'user' is the question")
    max_tokens: int | None = Field(default=None, ge=1, le=INT32)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=INT32)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: Literal[1] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = Field(default=None, ge=-SAFE_INT, le=SAFE_INT)
    stop: Stop | Annotated[list[Stop], Field(max_length=STOP_ITEMS)] | None = None
    user: Name | None = None

    _integral = field_validator("max_tokens", "max_completion_tokens", "n", "seed", mode="before")(integral)

    @field_validator("messages")
    @classmethod
    def _few_enough(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        if cls.limits and len(value) > cls.limits.messages:
            raise ValueError(
                f"{len(value)} messages, the limit is {cls.limits.messages} (as many as {BODY_SETTING} holds at "
                "their longest: raise it for longer chats)"
            )
        return value

    @staticmethod
    def document(schema: dict[str, Any], limits: BodyLimits) -> None:
        user = {"properties": {"role": {"const": "user"}}, "required": ["role"]}
        schema["properties"]["messages"] |= {"maxItems": limits.messages, "contains": user}


class RequestModels(NamedTuple):
    answer: type[AnswerRequest]
    chat: type[ChatRequest]
    feedback: type[FeedbackRequest]


def request_models(limits: BodyLimits) -> RequestModels:
    """The request models of an app with these limits: validation and OpenAPI schema both carry them."""

    def limited(model: type[_Request], **fields: Any) -> Any:
        made = create_model(model.__name__, __base__=model, __module__=model.__module__, **fields)
        made.limits = limits
        return made

    message = limited(ChatMessage)
    messages = (list[message], Field(min_length=1, description=ChatRequest.model_fields["messages"].description))
    return RequestModels(limited(AnswerRequest), limited(ChatRequest, messages=messages), limited(FeedbackRequest))


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


FEEDBACK_OPERATION = "feedback"
#: OpenAPI links: an answer's `id` is what feedback cites, so clients and schemathesis' stateful phase can chain
#: POST /v1/answer -> POST /v1/feedback (feedback on an id this process never served is a 404)
ANSWER_LINKS = {
    "Feedback": {
        "operationId": FEEDBACK_OPERATION,
        "requestBody": {"answer_id": "$response.body#/id"},
        "description": "rate this answer: its `id` is the feedback's `answer_id`",
    }
}

#: the statuses each kind of route may answer besides success, for the OpenAPI document
REFUSALS: dict[int | str, dict[str, Any]] = {
    400: error_response("a body that cannot be decoded at all (not UTF-8)"),
    401: error_response("missing or invalid API key (when keys are configured)"),
    413: {
        "description": "request body over `serve.max_body_bytes` (refused unread); the schema's bounds keep every "
        "body it allows under it, as `json.dumps` writes it (escapes and all), so only padding gets here",
        "content": {"text/plain": {}},
    },
    422: error_response(
        "what the schema refuses (malformed JSON, a wrong type, a missing or unknown field, a value out of its bounds, "
        "a question without visible text), and what a schema cannot say: a string that is not text (a lone "
        "surrogate), a number JSON cannot carry (NaN, Infinity)"
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
