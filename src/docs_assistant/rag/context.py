"""Fit the retrieved context into the model's input budget, dropping the lowest-ranked chunks first.

A prompt cut to the budget from the left loses its instructions and its best source, the two parts an
answer needs most. Instead the prompt is rendered with as many top-ranked chunks as fit; the first chunk
that does not fit whole is trimmed at a token boundary (so the budget is used, not wasted) and the rest are
dropped. The instructions and the question are never cut: when they alone exceed the budget, no context
can be given and `ContextError` names the setting to raise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from docs_assistant.errors import DocsAssistantError
from docs_assistant.rag.prompts import Prompt
from docs_assistant.rag.retriever import Chunk

BUDGET_SETTING = "setting 'model.max_input_tokens' (env DOCS_ASSISTANT_MODEL__MAX_INPUT_TOKENS)"
#: names the fitting policy in eval cache keys: an answer cached under another policy saw another prompt
POLICY = "rank-drop-trim-1"


class ContextError(DocsAssistantError):
    """The prompt's instructions and the question alone do not fit the input budget."""


@dataclass(frozen=True)
class FittedPrompt:
    """A rendered prompt and what fitting did: `kept` chunks made it in (the last one `trimmed` if so)."""

    text: str
    context: str
    chunks: list[Chunk]
    retrieved: int
    tokens: int | None
    budget: int | None
    trimmed: bool = False

    @property
    def kept(self) -> int:
        return len(self.chunks)

    @property
    def dropped(self) -> int:
        """Chunks left out entirely (a trimmed chunk is kept, not dropped)."""
        return self.retrieved - self.kept

    def record(self) -> dict[str, Any]:
        """What answers and eval cases report: the budget, the prompt's tokens, the chunks kept and dropped."""
        return {
            "budget": self.budget,
            "prompt_tokens": self.tokens,
            "chunks_retrieved": self.retrieved,
            "chunks_kept": self.kept,
            "chunks_dropped": self.dropped,
            "chunk_trimmed": self.trimmed,
        }


def format_context(chunks: list[Chunk]) -> str:
    return "\n\n".join(f"[{i}] {c.title} ({c.source})\n{c.text}" for i, c in enumerate(chunks, start=1))


def render_all(prompt: Prompt, question: str, chunks: list[Chunk]) -> FittedPrompt:
    """Every chunk, uncounted: for a backend without a local tokenizer, whose server enforces its own limit."""
    context = format_context(chunks)
    text = prompt.render(context=context, question=question)
    return FittedPrompt(text, context, list(chunks), len(chunks), None, None)


def fit_prompt(prompt: Prompt, question: str, chunks: list[Chunk], tokenizer: Any, budget: int) -> FittedPrompt:
    """Render `prompt` with the top-ranked `chunks` (best first) that fit `budget` tokens of `tokenizer`.

    Token counts are measured on the whole rendered prompt, as the model will read it (special tokens
    included), never summed from parts: a tokenizer may merge across a boundary.
    """

    def count(text: str) -> int:
        return len(tokenizer(text).input_ids)

    def render(kept: list[Chunk]) -> tuple[str, str]:
        context = format_context(kept)
        return prompt.render(context=context, question=question), context

    bare, _ = render([])
    floor = count(bare)
    if floor > budget:
        raise ContextError(
            f"prompt {prompt.id} v{prompt.version} with this question needs {floor} tokens before any "
            f"documentation is added, over the input budget of {budget}",
            where=BUDGET_SETTING,
            hint="shorten the question or the template, or raise the setting (within the model's context size)",
        )
    kept: list[Chunk] = []
    text, context, tokens = bare, "", floor
    trimmed = False
    for chunk in chunks:
        candidate, candidate_context = render([*kept, chunk])
        n = count(candidate)
        if n <= budget:
            kept.append(chunk)
            text, context, tokens = candidate, candidate_context, n
            continue
        part = _trim(chunk, kept, render, count, tokenizer, budget)
        if part is not None:
            kept.append(part)
            text, context = render(kept)
            tokens = count(text)
            trimmed = True
        break
    return FittedPrompt(text, context, kept, len(chunks), tokens, budget, trimmed)


def _trim(chunk: Chunk, kept: list[Chunk], render: Any, count: Any, tokenizer: Any, budget: int) -> Chunk | None:
    """`chunk` cut to the longest token prefix of its text that still fits after `kept`, or None if none does.

    Binary search over the prefix length: `lo` always fits (0 means nothing), `hi` never does.
    """
    ids = tokenizer(chunk.text, add_special_tokens=False).input_ids

    def head(n: int) -> Chunk:
        # a byte-level prefix can end inside a character, which decodes to U+FFFD: leave that out
        text = tokenizer.decode(ids[:n], skip_special_tokens=True).rstrip("\ufffd")
        return replace(chunk, text=text)

    lo, hi = 0, len(ids)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(render([*kept, head(mid)])[0]) <= budget:
            lo = mid
        else:
            hi = mid
    if lo == 0:
        return None
    part = head(lo)
    return part if part.text.strip() else None


def fit_for(
    llm: Any, prompt: Prompt, question: str, chunks: list[Chunk], max_new_tokens: int | None = None
) -> FittedPrompt:
    """The prompt `llm` is given: fitted to its input budget where it is a local model (it has a tokenizer).

    Duck-typed on what `LocalLLM` carries (`tokenizer`, `model`, `settings`), so a wrapper around one is
    fitted too; a remote endpoint gets every chunk and enforces its own context limit.
    """
    from docs_assistant.rag.llm import input_budget

    tokenizer, model, settings = (getattr(llm, name, None) for name in ("tokenizer", "model", "settings"))
    if tokenizer is None or model is None or settings is None:
        return render_all(prompt, question, chunks)
    return fit_prompt(prompt, question, chunks, tokenizer, input_budget(settings, model.config, max_new_tokens))
