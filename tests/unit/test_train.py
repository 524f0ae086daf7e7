"""The pure parts of the finetune stage: which feedback teaches, sequence encoding, packing, promotion."""

from __future__ import annotations

import pytest

from docs_assistant.errors import ConfigError
from docs_assistant.train.data import Example, usable_feedback
from docs_assistant.train.lora import IGNORE, TokenRow, encode, pack
from docs_assistant.train.promote import decide, wins


def row(**values: object) -> dict[str, object]:
    return {"id": "fb-1", "question": "How?", "answer": "Like this.", "rating": 0, "correction": None} | values


def test_liked_answers_and_corrections_teach_dislikes_without_correction_do_not() -> None:
    rows = [
        row(id="liked", rating=1),
        row(id="corrected", rating=-1, correction="Use the .deb package."),
        row(id="disliked", rating=-1),
        row(id="neutral", rating=0),
        row(id="no-question", rating=1, question=None),
        row(id="blank-correction", rating=-1, correction="   "),
        row(id="liked-empty-answer", rating=1, answer=""),
    ]
    usable = {r["id"]: r["target"] for r in usable_feedback(rows)}
    assert usable == {"liked": "Like this.", "corrected": "Use the .deb package."}


def test_a_correction_wins_over_the_served_answer_even_when_liked() -> None:
    (only,) = usable_feedback([row(rating=1, correction="Better answer.")])
    assert only["target"] == "Better answer."


@pytest.fixture(scope="module")
def tokenizer(models_dir):
    """The tiny model's real byte-level tokenizer: one token per byte."""
    from transformers import AutoTokenizer

    from docs_assistant.rag.tiny_model import ensure_tiny_model

    return AutoTokenizer.from_pretrained(ensure_tiny_model(models_dir))


def test_encode_scores_only_the_answer_and_cuts_the_prompt_from_the_left(tokenizer) -> None:
    example = Example("qa-1", "qa", "q", prompt="0123456789Question: q\nAnswer:", target="yes")
    seq = encode(tokenizer, example, max_input_tokens=12, max_seq_length=64)
    answer = [*tokenizer(" yes", add_special_tokens=False).input_ids, tokenizer.eos_token_id]
    assert seq.input_ids[-len(answer) :] == answer
    assert seq.labels == [IGNORE] * 12 + answer
    assert tokenizer.decode(seq.input_ids[:12]) == "Question: q\nAnswer:"[-12:]


def test_encode_keeps_the_whole_sequence_within_max_seq_length(tokenizer) -> None:
    example = Example("qa-1", "qa", "q", prompt="p" * 100, target="a" * 20)
    seq = encode(tokenizer, example, max_input_tokens=1000, max_seq_length=32)
    assert len(seq.input_ids) == 32
    assert sum(1 for x in seq.labels if x != IGNORE) == 22  # " " + 20 letters + EOS


def test_packing_keeps_every_example_whole_and_within_the_length() -> None:
    rows = [TokenRow([i] * n, [IGNORE] * (n - 1) + [i]) for i, n in enumerate([5, 3, 7, 2, 6], start=1)]
    packed = pack(rows, max_len=8)
    assert all(len(p.input_ids) <= 8 for p in packed)
    assert sorted(t for p in packed for t in p.input_ids) == sorted(t for r in rows for t in r.input_ids)
    assert sorted(t for p in packed for t in p.labels if t != IGNORE) == [1, 2, 3, 4, 5]
    assert len(packed) < len(rows)


@pytest.mark.parametrize(
    ("candidate", "rival", "higher", "margin", "expected"),
    [
        (4.0, 5.0, False, 0.02, True),  # lower loss by 20 %
        (4.95, 5.0, False, 0.02, False),  # lower, but by 1 % only
        (5.0, 5.0, False, 0.0, False),  # a tie never wins
        (0.6, 0.5, True, 0.1, True),
        (0.52, 0.5, True, 0.1, False),
    ],
)
def test_wins_needs_the_margin_in_the_metric_direction(
    candidate: float, rival: float, higher: bool, margin: float, expected: bool
) -> None:
    assert wins(candidate, rival, higher, margin) is expected


def test_promotion_needs_both_base_and_champion_beaten() -> None:
    metric = "likelihood.reference_loss"
    first = decide({metric: 4.0}, {"base": {metric: 7.0}, "champion": None}, [metric], 0.02)
    assert first.promote
    assert first.beats_champion  # no champion yet: nothing to beat
    same = decide({metric: 4.0}, {"base": {metric: 7.0}, "champion": {metric: 4.0}}, [metric], 0.02)
    assert same.beats_base
    assert not same.beats_champion
    assert not same.promote
    assert "does not beat champion" in same.reason
    worse = decide({metric: 7.5}, {"base": {metric: 7.0}, "champion": None}, [metric], 0.02)
    assert not worse.beats_base
    assert "does not beat base" in worse.reason


def test_an_unknown_promotion_metric_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"finetune\.promote_on.*unknown metric"):
        decide({"x.y": 1.0}, {"base": {"x.y": 2.0}}, ["x.y"], 0.0)


def test_promote_on_must_name_a_suite_that_runs() -> None:
    from docs_assistant.config import load_settings

    with pytest.raises(ConfigError, match="finetune"):
        load_settings(finetune={"promote_on": ["answers.semantic_similarity"], "eval_suites": ["likelihood"]})
