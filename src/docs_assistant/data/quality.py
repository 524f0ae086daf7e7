"""Quality checks beyond types: duplicates, near-duplicates, encoding, script, PII, staleness, chunk lengths.

Each returns the positions of the rows it flags with a short reason; `validate` decides from the settings
whether a flag quarantines the row and whether the flagged share fails the gate. Near-duplicates use
embeddings: the rows' own (from `data/embeddings/`) where given, else a hashed word-bigram embedding,
which needs no model and keeps this stage fast; random-hyperplane LSH finds candidate pairs so
100,000 documents are not compared pairwise.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime

import numpy as np

from docs_assistant.config import ValidationSettings

HASH_DIM = 512
Flags = dict[int, str]

_MOJIBAKE = re.compile(r"Ã[\x80-\xbf]|â€|Â[\xa0-\xbf]|\ufffd")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b")
_PHONE = re.compile(r"(?<![\w.:/-])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,4}(?![\w.:/-])")
_KEYS = re.compile(
    r"\bAKIA[0-9A-Z]{16}\b|\bsk-[A-Za-z0-9_-]{20,}|\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----|\b[A-Za-z0-9+_=-]{32,}\b"
)


def text_key(text: str) -> str:
    """Content hash that ignores case and whitespace: the same page copied twice hashes the same."""
    return hashlib.sha256(" ".join(text.lower().split()).encode("utf-8")).hexdigest()


def exact_duplicates(ids: Sequence[str], texts: Sequence[str]) -> Flags:
    first: dict[str, str] = {}
    flags: Flags = {}
    for pos, (doc_id, text) in enumerate(zip(ids, texts, strict=True)):
        key = text_key(text)
        if key in first:
            flags[pos] = f"same text as document {first[key]!r}"
        else:
            first[key] = doc_id
    return flags


def hashed_embeddings(texts: Sequence[str], dim: int = HASH_DIM) -> np.ndarray:
    """Unit-length bag of word bigrams (crc32 into `dim` buckets): cheap, deterministic, model-free.

    Bigrams, not words or character trigrams: on the sample corpus they keep distinct pages below 0.5
    cosine while a copy with a few edits stays above 0.9.
    """
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        words = text.lower().split()
        pairs = [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)] or words
        buckets = [zlib.crc32(p.encode("utf-8")) % dim for p in pairs]
        np.add.at(out[row], buckets, 1.0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


def near_duplicates(
    ids: Sequence[str], vectors: np.ndarray, threshold: float, *, bands: int = 8, bits: int = 12, seed: int = 0
) -> Flags:
    """Later rows whose cosine with an earlier row is >= threshold; LSH buckets, then exact cosine."""
    if len(ids) < 2:
        return {}
    rng = np.random.default_rng(seed)
    planes = rng.standard_normal((vectors.shape[1], bands * bits)).astype(np.float32)
    signs = (vectors @ planes) > 0
    weights = 1 << np.arange(bits, dtype=np.int64)
    flags: Flags = {}
    for band in range(bands):
        codes = signs[:, band * bits : (band + 1) * bits].astype(np.int64) @ weights
        order = np.argsort(codes, kind="stable")
        split_at = np.flatnonzero(np.diff(codes[order])) + 1
        for group in np.split(order, split_at):
            if len(group) < 2:
                continue
            group = np.sort(group)
            sims = vectors[group] @ vectors[group].T
            for j in range(1, len(group)):
                if group[j] in flags:
                    continue
                best = int(np.argmax(sims[j, :j]))
                if sims[j, best] >= threshold:
                    flags[int(group[j])] = f"cosine {sims[j, best]:.3f} with document {ids[group[best]]!r}"
    return flags


def encoding_problems(texts: Iterable[str]) -> Flags:
    flags: Flags = {}
    for pos, text in enumerate(texts):
        if m := _MOJIBAKE.search(text):
            flags[pos] = f"replacement or mojibake characters {m.group()!r} at offset {m.start()}"
        elif m := _CONTROL.search(text):
            flags[pos] = f"control character U+{ord(m.group()):04X} at offset {m.start()}"
    return flags


def script_problems(texts: Iterable[str], vs: ValidationSettings) -> Flags:
    """Documents whose letters are mostly outside the expected script (a page in another language)."""
    if vs.expected_script == "any":
        return {}
    flags: Flags = {}
    for pos, text in enumerate(texts):
        letters = [c for c in text if c.isalpha()]
        if not letters:
            continue
        foreign = sum(1 for c in letters if not ("LATIN" in unicodedata.name(c, "") or c.isascii()))
        share = foreign / len(letters)
        if share > vs.max_foreign_script_share:
            flags[pos] = f"{share:.0%} of letters are not Latin (limit {vs.max_foreign_script_share:.0%})"
    return flags


def _phone_like(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if not 10 <= len(digits) <= 15:
        return False
    return not re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", candidate)  # dates and date ranges


def _key_like(candidate: str) -> bool:
    if len(candidate) < 32 or candidate.startswith(("-----", "AKIA", "sk-", "gh", "xox")):
        return True
    classes = sum(bool(re.search(p, candidate)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    return classes == 3 and len(set(candidate)) >= 16


def pii_findings(texts: Iterable[str], vs: ValidationSettings) -> Flags:
    allowed = {d.lower() for d in vs.pii_allowed_email_domains}
    flags: Flags = {}
    for pos, text in enumerate(texts):
        found: list[str] = []
        found += [
            "email" for m in _EMAIL.finditer(text) if m.group(1).lower() not in allowed and not _reserved(m.group(1))
        ]
        found += ["phone number" for m in _PHONE.finditer(text) if _phone_like(m.group())]
        found += ["key-like string" for m in _KEYS.finditer(text) if _key_like(m.group())]
        if found:
            kinds = sorted(set(found))
            flags[pos] = f"{', '.join(kinds)} found ({len(found)} in all)"
    return flags


def _reserved(domain: str) -> bool:
    return domain.lower().rsplit(".", 1)[-1] in {"test", "example", "invalid", "localhost"}


def stale(updated: Sequence[object], vs: ValidationSettings, today: date | None = None) -> Flags:
    today = today or datetime.now().date()
    flags: Flags = {}
    for pos, value in enumerate(updated):
        if value is None:
            continue
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
        if isinstance(day, datetime):
            day = day.date()
        age = (today - day).days
        if age > vs.stale_after_days:
            flags[pos] = f"updated {day.isoformat()}, {age} days ago (limit {vs.stale_after_days})"
    return flags


def chunk_lengths(token_counts: Sequence[int], vs: ValidationSettings) -> tuple[Flags, Flags]:
    """(too short, too long) chunks, in embedder tokens."""
    short = {i: f"{n} tokens < {vs.min_chunk_tokens}" for i, n in enumerate(token_counts) if n < vs.min_chunk_tokens}
    long = {i: f"{n} tokens > {vs.max_chunk_tokens}" for i, n in enumerate(token_counts) if n > vs.max_chunk_tokens}
    return short, long
