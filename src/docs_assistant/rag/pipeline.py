"""The RAG pipeline: question → retrieve → render the prompt → generate → answer with its provenance.

Every answer carries what produced it (prompt id/version/hash, model and adapter, index version) and how
long each phase took, so evals, the service and the release manifest report the same facts.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.errors import DocsAssistantError
from docs_assistant.rag.prompts import Prompt, PromptRegistry
from docs_assistant.rag.retriever import Chunk, Retriever


class QuestionError(DocsAssistantError):
    """The question itself is unusable (empty or over the length limit)."""


@dataclass(frozen=True)
class Answer:
    id: str
    question: str
    text: str
    sources: list[dict[str, Any]]
    prompt: dict[str, str]
    model: dict[str, Any]
    index_version: int
    timings_ms: dict[str, float]
    tokens: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_question(question: str, max_chars: int) -> str:
    text = question.strip()
    if not text:
        raise QuestionError("must not be empty", where="field 'question'")
    if len(text) > max_chars:
        raise QuestionError(
            f"too long: {len(text)} characters, the limit is {max_chars}",
            where="field 'question'",
            hint="shorten it, or raise setting 'limits.max_question_chars'",
        )
    return text


def format_context(chunks: list[Chunk]) -> str:
    return "\n\n".join(f"[{i}] {c.title} ({c.source})\n{c.text}" for i, c in enumerate(chunks, start=1))


class RagPipeline:
    """Loads prompts first (cheap, fails fast), then the index, then the model."""

    def __init__(self, settings: Settings, *, embedder: Any = None, llm: Any = None):
        self.settings = settings
        self.prompt: Prompt = PromptRegistry.load(settings.paths.prompts_dir).get(
            settings.prompt.id, settings.prompt.version
        )
        self.retriever = Retriever(settings, embedder=embedder)
        self.retriever.embedder  # noqa: B018 - load at start-up, not inside the first answer's timings
        if llm is None:
            from docs_assistant.rag.llm import load_llm

            llm = load_llm(settings.model, settings.paths.models_dir)
        self.llm = llm

    def answer(self, question: str) -> Answer:
        text = check_question(question, self.settings.limits.max_question_chars)
        started = time.perf_counter()
        chunks, timings = self.retriever.retrieve(text)
        t_render = time.perf_counter()
        prompt = self.prompt.render(context=format_context(chunks), question=text)
        t_generate = time.perf_counter()
        generation = self.llm.generate(prompt)
        done = time.perf_counter()
        timings |= {
            "render_ms": (t_generate - t_render) * 1000,
            "generate_ms": (done - t_generate) * 1000,
            "total_ms": (done - started) * 1000,
        }
        return Answer(
            id=f"ans-{uuid.uuid4().hex}",
            question=text,
            text=generation.text,
            sources=[c.as_dict() for c in chunks],
            prompt=self.prompt.ref,
            model=asdict(self.llm.info),
            index_version=self.retriever.version,
            timings_ms={k: round(v, 3) for k, v in timings.items()},
            tokens={"prompt": generation.prompt_tokens, "completion": generation.completion_tokens},
        )
