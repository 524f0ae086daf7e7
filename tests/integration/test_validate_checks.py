"""The validate stage's vectorised checks give exactly what the plain per-row checks give.

Each fast path (numpy word hashing, the RE2 screen, the duplicate fingerprint, work in page chunks, the
pathlib-free file walk) is compared with the straightforward Python it replaces, on pages built to hit
the corners: Unicode and ASCII-only whitespace, case folding that changes length, control characters,
mojibake, every kind of PII and key, exact and near copies.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from pathlib import Path

import numpy as np
import pytest

from docs_assistant.config import ValidationSettings
from docs_assistant.data import quality
from docs_assistant.data.readers import markdown_files

PIECES = [
    *("word", "Word", "WORD", "relay", "the", ".", ",", "!", "é", "e\u0301", "café", "straße", "İ", "Σ", "ΣΑ", "ǅ"),
    *(" ", "  ", "\n", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\xa0", "\u2003"),  # str.split() whitespace
    *("\x00", "\x01", "\x7f", "Ã©", "â€", "Â\xa0", "\ufffd"),  # control characters and mojibake
    *("jane.doe@gmail.com", "a@example.com", "x@y.test", "@", "555 123 4567", "(555) 123-4567", "+1 (555) 123 45678"),
    *("2024-01-02 - 2024-03-04", "v1.2.3", "12:30", "0123456789012", "٣٣٣٣٣٣٣٣٣٣٣"),
    *("AKIAABCDEFGHIJ012345", "sk-" + "a" * 24, "ghp_" + "A1b" * 11, "xoxb-1234567890ab"),
    *("-----BEGIN RSA PRIVATE KEY-----", "aB3" * 11 + "xyzQRS789", "a" * 40, "(" + "Zz9" * 12 + "abcdefghijklmnop)"),
]


def pages(seed: int, n: int = 1500) -> list[str]:
    rng = random.Random(seed)
    texts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30))) for _ in range(n)]
    texts += [t.upper() for t in texts[:100:7]] + ["\t".join(t.split()) + " " for t in texts[:100:5]]
    return [*texts, "", " ", "\n", "one"]


def ascii_only(texts: list[str]) -> list[str]:
    return ["".join(c for c in t if c.isascii()) for t in texts]


@pytest.fixture(params=[0, 1])
def texts(request) -> list[str]:
    return pages(request.param)


@pytest.fixture(params=[None, 64], ids=["one-chunk", "tiny-chunks"])
def chunked(request, monkeypatch) -> None:
    if request.param:
        monkeypatch.setattr(quality, "CHUNK_BYTES", request.param)


def test_word_ids_are_crc32_of_the_lower_cased_words(texts, chunked) -> None:
    for sample in (texts, ascii_only(texts), [], [""], ["a"]):
        words = quality.word_ids(sample)
        expected = [t.lower().split() for t in sample]
        assert words.counts.tolist() == [len(w) for w in expected]
        assert words.ids.tolist() == [zlib.crc32(w.encode("utf-8")) for page in expected for w in page]


def test_exact_duplicates_are_the_pages_with_the_same_folded_text(texts, chunked) -> None:
    ids = [f"p{i}" for i in range(len(texts))]
    first: dict[bytes, str] = {}
    expected = {}
    for pos, text in enumerate(texts):
        key = hashlib.blake2b(" ".join(text.lower().split()).encode("utf-8"), digest_size=16).digest()
        if key in first:
            expected[pos] = f"same text as document {first[key]!r}"
        else:
            first[key] = ids[pos]
    assert expected
    assert quality.exact_duplicates(ids, texts) == expected


def test_the_screen_passes_no_page_the_encoding_or_pii_checks_flag(texts) -> None:
    vs = ValidationSettings()
    for sample in (texts, ascii_only(texts)):
        every = range(len(sample))
        encoding, pii = quality.encoding_problems(sample, every), quality.pii_findings(sample, vs, every)
        assert encoding
        assert pii
        assert set(encoding) | set(pii) <= set(quality.screen(sample))
        assert quality.encoding_problems(sample) == encoding
        assert quality.pii_findings(sample, vs) == pii


def test_the_screen_passes_clean_ascii_pages() -> None:
    clean = ["The relay keeps every message for 7 days.\n", "Page 12 of the guide, see relay-alerting.\n"]
    assert quality.screen([*clean, "Call 555 123 4567.\n", "café\n"]) == [2, 3]


def test_hashed_embeddings_and_near_duplicates_do_not_depend_on_chunks(texts, monkeypatch) -> None:
    texts = texts + [t + " and one more" for t in texts[:300:3]]
    whole = quality.hashed_embeddings(texts)
    ids = [f"p{i}" for i in range(len(texts))]
    flags = quality.near_duplicates(ids, whole, 0.9)
    assert flags
    monkeypatch.setattr(quality, "CHUNK_BYTES", 64)
    assert np.array_equal(quality.hashed_embeddings(texts), whole)
    first, later = np.arange(len(texts) - 1), np.arange(1, len(texts))
    assert np.array_equal(
        quality._row_dots(whole, first, later, rows=7), np.einsum("ij,ij->i", whole[first], whole[later])
    )
    assert quality.near_duplicates(ids, whole, 0.9) == flags
    monkeypatch.setattr(quality, "PROJECTION_ROWS", 7)
    assert quality.near_duplicates(ids, whole, 0.9) == flags


@pytest.mark.parametrize("threshold", [0.9, 0.5, 0.2])
def test_the_bound_drops_no_pair_that_could_be_flagged(texts, threshold, monkeypatch) -> None:
    """Same flags, same matches and cosines, as comparing every candidate pair in full."""
    texts = texts + [t + " and one more" for t in texts[:300:3]] + [t.replace("word", "relay") for t in texts[:90]]
    vectors = quality.hashed_embeddings(texts)
    ids = [f"p{i}" for i in range(len(texts))]
    pruned = quality.near_duplicates(ids, vectors, threshold)
    monkeypatch.setattr(quality, "HEAD_DIMS", quality.HASH_DIM)  # vectors too short to bound: every pair in full
    assert quality.near_duplicates(ids, vectors, threshold) == pruned
    assert pruned


def test_markdown_files_are_what_sorted_rglob_gives(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    for rel in ("a/b.md", "a-b.md", "a.md", "a/c/d.md", "A.md", ".hidden.md", "b.MD", "x.md/y.md", "z.mdx", "é.md"):
        path = docs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text("x", encoding="utf-8")
    (docs / "link").symlink_to(docs / "a")  # pathlib does not walk into symlinked directories
    (docs / "lnk.md").symlink_to(docs / "a.md")
    assert markdown_files(docs) == [str(p) for p in sorted(docs.rglob("*.md"))]


def test_each_contract_runs_its_checks_column_by_column_in_order() -> None:
    """Failures are reported (and quarantined) in this order; the column factory must keep it."""
    from docs_assistant.data import schemas

    vs = ValidationSettings()
    found = {
        name: {col: [c.name for c in column.checks] for col, column in schema.columns.items()}
        for name, schema in {
            "documents": schemas.document_schema(vs),
            "qa": schemas.qa_schema(vs, set()),
            "feedback": schemas.feedback_schema(),
            "chunks": schemas.chunk_schema(set()),
        }.items()
    }
    extra = {"extra": ["no_extra_fields"]}
    assert found == {
        "documents": {
            "id": ["is_text", "doc_id_format", "unique_id"],
            "title": ["is_text", "title_length"],
            "source": ["is_text", "source_format"],
            "text": ["is_text", "text_length"],
            "updated": ["updated_date"],
            **extra,
        },
        "qa": {
            "id": ["is_text", "unique_id"],
            "split": ["isin"],
            "question": ["is_text", "question_length"],
            "answer": ["is_text", "answer_length"],
            "doc_ids": ["doc_id_list", "cited_docs_exist"],
            **extra,
        },
        "feedback": {
            "id": ["is_text", "unique_id"],
            "answer_id": ["answer_id_format"],
            "rating": ["rating_range"],
            "correction": ["optional_text"],
            "created_at": ["timestamp"],
            "question": ["optional_text"],  # what the rated answer answered: exported by `env feedback`
            "answer": ["optional_text"],
            **extra,
        },
        "chunks": {
            "id": ["is_text", "unique_id"],
            "doc_id": ["is_text", "doc_exists"],
            "text": ["chunk_not_empty"],
            **extra,
        },
    }
    assert [c.name for c in schemas.qa_schema(vs, set()).checks] == ["question_in_both_splits"]
    nullable = {col for col, c in schemas.document_schema(vs).columns.items() if c.nullable}
    assert nullable == {"updated"}
