"""Fitting the retrieved context to the input budget, with the real tiny model's tokenizer (one token a byte)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from docs_assistant.config import ModelSettings
from docs_assistant.rag.context import ContextError, fit_prompt, format_context
from docs_assistant.rag.llm import LocalLLM
from docs_assistant.rag.prompts import PromptRegistry
from docs_assistant.rag.retriever import Chunk

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
QUESTION = "Which port does the service listen on?"
PROMPT = PromptRegistry.load(REPO / "prompts").get("rag-answer", "1")
#: best first; each text is unique, so the rendered prompt shows which chunks made it in
CHUNKS = [
    Chunk(f"c{i}", f"d{i}", f"Title {i}", f"docs/{i}.md", f"chunk-{i} " + "word " * 40, 1.0 - i / 10)
    for i in range(1, 6)
]


@pytest.fixture(scope="module")
def tiny(models_dir: Path) -> LocalLLM:
    return LocalLLM(ModelSettings(), models_dir)


def tokens(llm: LocalLLM, text: str) -> int:
    return len(llm.tokenizer(text).input_ids)


def bare_tokens(llm: LocalLLM) -> int:
    return tokens(llm, PROMPT.render(context="", question=QUESTION))


def whole_chunk_tokens(llm: LocalLLM, n: int) -> int:
    """Tokens of the prompt rendered with the first `n` chunks whole."""
    return tokens(llm, PROMPT.render(context=format_context(CHUNKS[:n]), question=QUESTION))


def test_everything_fits_a_large_budget(tiny: LocalLLM) -> None:
    fitted = fit_prompt(PROMPT, QUESTION, CHUNKS, tiny.tokenizer, 10**6)
    assert fitted.text == PROMPT.render(context=fitted.context, question=QUESTION)
    assert (fitted.kept, fitted.dropped, fitted.trimmed) == (5, 0, False)
    assert fitted.tokens == tokens(tiny, fitted.text)


def test_lowest_ranked_chunks_go_first_and_the_next_is_trimmed_to_the_exact_budget(tiny: LocalLLM) -> None:
    budget = whole_chunk_tokens(tiny, 2) + 50  # two whole chunks, the third header and a few words
    fitted = fit_prompt(PROMPT, QUESTION, CHUNKS, tiny.tokenizer, budget)
    instructions = PROMPT.template.split("{context}")[0]
    assert fitted.text.startswith(instructions)
    assert fitted.text.endswith(f"Question: {QUESTION}\nAnswer:")
    assert CHUNKS[0].text in fitted.text
    assert CHUNKS[1].text in fitted.text
    assert "chunk-3" in fitted.text  # the third, cut short
    assert CHUNKS[2].text not in fitted.text
    assert "chunk-4" not in fitted.text
    assert "chunk-5" not in fitted.text
    assert (fitted.kept, fitted.dropped, fitted.trimmed) == (3, 2, True)
    assert fitted.tokens == tokens(tiny, fitted.text) == budget  # byte tokens: a prefix can fill it exactly
    assert fitted.record() == {
        "budget": budget,
        "prompt_tokens": budget,
        "chunks_retrieved": 5,
        "chunks_kept": 3,
        "chunks_dropped": 2,
        "chunk_trimmed": True,
    }


def test_whole_chunks_that_fill_the_budget_are_not_trimmed(tiny: LocalLLM) -> None:
    budget = whole_chunk_tokens(tiny, 3)
    fitted = fit_prompt(PROMPT, QUESTION, CHUNKS, tiny.tokenizer, budget)
    assert (fitted.kept, fitted.dropped, fitted.trimmed, fitted.tokens) == (3, 2, False, budget)


def test_the_top_chunk_is_trimmed_rather_than_dropped(tiny: LocalLLM) -> None:
    budget = bare_tokens(tiny) + 40  # the header of chunk 1 and a few words of it
    fitted = fit_prompt(PROMPT, QUESTION, CHUNKS, tiny.tokenizer, budget)
    assert "[1] Title 1 (docs/1.md)\nchunk-1" in fitted.text
    assert QUESTION in fitted.text
    assert (fitted.kept, fitted.dropped, fitted.trimmed) == (1, 4, True)
    assert fitted.tokens is not None
    assert fitted.tokens <= budget


def test_instructions_and_question_alone_over_the_budget_name_the_setting(tiny: LocalLLM) -> None:
    with pytest.raises(ContextError) as err:
        fit_prompt(PROMPT, QUESTION, CHUNKS, tiny.tokenizer, bare_tokens(tiny) - 1)
    message = str(err.value)
    assert "model.max_input_tokens" in message
    assert "DOCS_ASSISTANT_MODEL__MAX_INPUT_TOKENS" in message
    assert f"needs {bare_tokens(tiny)} tokens" in message


def test_no_room_left_for_any_chunk_sends_instructions_and_question(tiny: LocalLLM) -> None:
    budget = bare_tokens(tiny)
    fitted = fit_prompt(PROMPT, QUESTION, CHUNKS, tiny.tokenizer, budget)
    assert (fitted.kept, fitted.dropped, fitted.tokens) == (0, 5, budget)
    assert fitted.text == PROMPT.render(context="", question=QUESTION)


def test_a_cut_inside_a_multibyte_character_leaves_no_replacement_character(tiny: LocalLLM) -> None:
    accented = [Chunk("c1", "d1", "Title 1", "docs/1.md", "é" * 200, 0.9)]
    for extra in range(40, 50):  # both parities of the byte cut
        fitted = fit_prompt(PROMPT, QUESTION, accented, tiny.tokenizer, bare_tokens(tiny) + extra)
        assert "\ufffd" not in fitted.text
        assert fitted.tokens is not None
        assert fitted.tokens <= bare_tokens(tiny) + extra


def test_input_budget_leaves_the_answer_room_within_the_model_positions(models_dir: Path) -> None:
    positions = 2048  # the tiny model's max_position_embeddings
    llm: Any = LocalLLM(ModelSettings(max_input_tokens=1536, max_new_tokens=48), models_dir)
    assert llm.input_budget() == 1536
    assert llm.input_budget(1000) == positions - 1000
    wide = LocalLLM(ModelSettings(max_input_tokens=4000, max_new_tokens=48), models_dir)
    assert wide.input_budget() == positions - 48
