"""Request and response bodies. Requests forbid unknown fields and coerce nothing (strict types)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: feedback ratings: -1 (wrong or unhelpful), 0 (neutral), 1 (helpful)
Rating = Annotated[int, Field(ge=-1, le=1, strict=True)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


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

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(_Request):
    include_usage: bool = False


class ChatRequest(_Request):
    """OpenAI's chat-completions request; sampling knobs are accepted and the server's settings decide."""

    model: str
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
