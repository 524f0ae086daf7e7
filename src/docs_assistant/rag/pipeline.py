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
from docs_assistant.rag.context import fit_for
from docs_assistant.rag.context import format_context as format_context  # its old home; callers import it here
from docs_assistant.rag.guardrails import Guardrails
from docs_assistant.rag.llm import OnText
from docs_assistant.rag.prompts import Prompt, PromptRegistry
from docs_assistant.rag.questions import LIMIT_HINT, question_problem
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
    #: what the guardrails did: {"blocked": reason or None, "redactions": {kind: count}}
    guardrail: dict[str, Any] = field(default_factory=lambda: {"blocked": None, "redactions": {}})
    #: how the retrieved chunks fit the input budget (`FittedPrompt.record`): the first `chunks_kept` of
    #: `sources` reached the model, the last of them cut short when `chunk_trimmed`; {} for a question refused before retrieval
    context: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_question(question: str, max_chars: int) -> str:
    text = question.strip()
    if problem := question_problem(text, max_chars):
        hint = LIMIT_HINT if problem.startswith("too long") else None
        raise QuestionError(problem, where="field 'question'", hint=hint)
    return text


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
            from docs_assistant.rag.llm import load_configured_llm

            llm = load_configured_llm(settings)
        self.llm = llm
        self.guardrails = Guardrails(settings.guardrails)

    def check_fits(self, question: str, max_new_tokens: int | None = None) -> None:
        """Raise ContextError when the instructions and `question` alone exceed the input budget: a service
        calls this before admitting the request, so the client gets a 422, not a failure after retrieval."""
        fit_for(self.llm, self.prompt, question, [], max_new_tokens)

    def answer(
        self,
        question: str,
        *,
        max_new_tokens: int | None = None,
        on_text: OnText | None = None,
        answer_id: str | None = None,
    ) -> Answer:
        """Answer one question; with `on_text`, screened text is streamed to it as it is generated.

        `answer_id` lets a caller that announces the answer before it exists (a stream) choose its id.
        """
        answer_id = answer_id or f"ans-{uuid.uuid4().hex}"
        text = check_question(question, self.settings.limits.max_question_chars)
        started = time.perf_counter()
        blocked = self.guardrails.screen_question(text)
        if blocked is not None:  # refused before any retrieval or generation
            if on_text is not None:
                on_text(self.guardrails.refusal)
            timings = {"total_ms": (time.perf_counter() - started) * 1000}
            verdict = {"blocked": blocked, "redactions": {}}
            return self._answer(answer_id, text, self.guardrails.refusal, [], timings, verdict)
        chunks, timings = self.retriever.retrieve(text)
        t_render = time.perf_counter()
        fitted = fit_for(self.llm, self.prompt, text, chunks, max_new_tokens)
        t_generate = time.perf_counter()
        if on_text is None:
            generation = self.llm.generate(fitted.text, max_new_tokens=max_new_tokens)
            reply, verdict = self.guardrails.screen_answer(generation.text)
        else:
            screen = self.guardrails.stream(on_text)
            generation = self.llm.generate(fitted.text, max_new_tokens=max_new_tokens, on_text=screen.feed)
            reply, verdict = screen.close()
        done = time.perf_counter()
        timings |= {
            "render_ms": (t_generate - t_render) * 1000,
            "generate_ms": (done - t_generate) * 1000,
            "total_ms": (done - started) * 1000,
        }
        tokens = {"prompt": generation.prompt_tokens, "completion": generation.completion_tokens}
        return self._answer(answer_id, text, reply, chunks, timings, verdict.as_dict(), tokens, fitted.record())

    def _answer(
        self,
        answer_id: str,
        question: str,
        text: str,
        chunks: list[Chunk],
        timings: dict[str, float],
        guardrail: dict[str, Any],
        tokens: dict[str, int] | None = None,
        context: dict[str, Any] | None = None,
    ) -> Answer:
        return Answer(
            id=answer_id,
            question=question,
            text=text,
            sources=[c.as_dict() for c in chunks],
            prompt=self.prompt.ref,
            model=asdict(self.llm.info),
            index_version=self.retriever.version,
            timings_ms={k: round(v, 3) for k, v in timings.items()},
            tokens=tokens or {"prompt": 0, "completion": 0},
            guardrail=guardrail,
            context=context or {},
        )
