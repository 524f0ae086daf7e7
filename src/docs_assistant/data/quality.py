"""Quality checks beyond types: duplicates, near-duplicates, encoding, script, PII, staleness, chunk lengths.

Each returns the positions of the rows it flags with a short reason; `validate` decides from the settings
whether a flag quarantines the row and whether the flagged share fails the gate. Near-duplicates use
embeddings: the rows' own (from `data/embeddings/`) where given, else a hashed word-bigram embedding,
which needs no model and keeps this stage fast; random-hyperplane LSH finds candidate pairs so
100,000 documents are not compared pairwise.

Nothing here loops over pages in Python when it can be avoided: words are hashed in numpy passes over the
pages' bytes, one RE2 `screen` picks the few pages the encoding and PII regexes must read, and big passes
run in ~1 MB chunks. Each fast path gives exactly what the plain per-page code gives
(`tests/integration/test_validate_checks.py` compares them).
"""

from __future__ import annotations

import itertools
import os
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import numpy as np

from docs_assistant.config import ValidationSettings

HASH_DIM = 512
#: leading coordinates whose dot product, with the rest's norms, bounds a pair's cosine (`_Bound`)
HEAD_DIMS = 64
BOUND_SLACK = 1e-3
PROJECTION_ROWS = 8192  # rows per block of the LSH projection
CHUNK_BYTES = 1 << 20
THREADS = min(2, os.cpu_count() or 1)
T = TypeVar("T")
Flags = dict[int, str]

_MOJIBAKE = re.compile(r"Ã[\x80-\xbf]|â€|Â[\xa0-\xbf]|\ufffd")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b")
# Each pattern starts with a digit or a literal so the regex engine skips ahead fast: this runs on every page.
_PHONE = re.compile(r"\d[\d ()-]{8,}\d")
_KEYS = re.compile(
    r"AKIA[0-9A-Z]{16}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
_TOKEN_EDGES = "\"'`()[]{}<>,;:.!?"  # noqa: S105 - punctuation around tokens, not a password


def words_of(texts: Iterable[str]) -> list[list[str]]:
    """Lower-cased words of each text, as `str.split` finds them."""
    return [t.lower().split() for t in texts]


@dataclass(frozen=True)
class Words:
    """The lower-cased words of each page as crc32 ids: page i's are `ids[starts[i] : starts[i] + counts[i]]`."""

    counts: np.ndarray  # int64, words per page
    ids: np.ndarray  # uint64, crc32 of each word's UTF-8, page after page

    @property
    def starts(self) -> np.ndarray:
        return (np.cumsum(self.counts) - self.counts).astype(np.int64)

    def take(self, pages: Sequence[int] | np.ndarray) -> Words:
        """The words of these pages, in this order (itself when that is every page in order, as it is for
        a corpus with nothing quarantined)."""
        pages = np.asarray(pages, dtype=np.int64)
        if len(pages) == len(self.counts) and np.array_equal(pages, np.arange(len(pages))):
            return self
        counts = self.counts[pages]
        moved = np.repeat(self.starts[pages] - Words(counts, self.ids).starts, counts)
        return Words(counts, self.ids[moved + np.arange(len(moved), dtype=np.int64)])


class _WordHashes(dict[str, int]):
    """crc32 of each distinct word, computed once: word lookups stay in C."""

    def __missing__(self, word: str) -> int:
        value = self[word] = zlib.crc32(word.encode("utf-8"))
        return value


def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0xEDB88320), table >> 1).astype(np.uint32)
    return table


_CRC32 = _crc_table()  # zlib's CRC-32 (reflected 0xEDB88320), one byte at a time
#: what `str.split()` splits on among ASCII characters: two runs of byte values, (first, how many)
_SPLIT_RUNS = ((9, 5), (28, 5))


def _in_threads(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """`[fn(x) for x in items]` on `THREADS` threads: numpy releases the GIL in these passes."""
    if THREADS < 2 or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(fn, items))


def _page_chunks(sizes: Sequence[int] | np.ndarray, budget: int | None = None) -> list[slice]:
    """Consecutive runs of pages whose sizes add up to about `budget`: the vectorised passes below work a
    chunk at a time so their temporaries stay in cache; a pass over 100 MB of text at once spends most of
    its time in page faults."""
    budget = budget or CHUNK_BYTES
    ends = np.searchsorted(np.cumsum(sizes), np.arange(budget, int(np.sum(sizes)) + budget, budget), side="right")
    bounds = [0, *sorted(set(np.minimum(ends, len(sizes)).tolist()) - {0})]
    if bounds[-1] != len(sizes):
        bounds.append(len(sizes))
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def _ascii_word_ids(texts: Sequence[str]) -> Words:
    """`Words` of pure-ASCII pages in numpy passes over their bytes: the same words `str.lower().split()`
    gives (ASCII lower-casing is per byte, the separators are `_SPLIT_RUNS`) and their zlib crc32, computed
    for all words at once one byte position at a time (longest words first, so each step is a slice)."""
    parts = _in_threads(_ascii_chunk_word_ids, [texts[c] for c in _page_chunks([len(t) + 1 for t in texts])])
    return Words(
        np.concatenate([p.counts for p in parts]) if parts else np.zeros(0, np.int64),
        np.concatenate([p.ids for p in parts]) if parts else np.zeros(0, np.uint64),
    )


def _ascii_chunk_word_ids(texts: Sequence[str]) -> Words:
    joined = "\n".join(texts).lower().encode("ascii")
    buf = np.frombuffer(joined, dtype=np.uint8)
    inside = np.zeros(len(buf) + 2, dtype=np.bool_)  # in a word; False before the first byte and after the last
    word = inside[1:-1]
    word[:] = True
    for first, count in _SPLIT_RUNS:  # byte comparisons (wrapping uint8): 3x faster than a lookup table
        word &= (buf - np.uint8(first)) >= count
    changes = np.flatnonzero(inside[1:] != inside[:-1])  # a word starts, then ends, then the next starts...
    starts, ends = changes[0::2], changes[1::2]
    lengths = ends - starts
    longest = int(lengths.max()) if len(lengths) else 0
    key = longest - lengths if longest >= 1 << 16 else (longest - lengths).astype(np.uint16)  # radix sort
    by_length = np.argsort(key, kind="stable")
    first_bytes, sorted_lengths = starts[by_length], lengths[by_length]
    active = np.searchsorted(-sorted_lengths, -np.arange(longest), side="left")  # words longer than j
    state = np.full(len(starts), 0xFFFFFFFF, dtype=np.uint32)
    for j in range(longest):
        k = int(active[j])
        crc = state[:k]
        state[:k] = _CRC32[(crc ^ buf[first_bytes[:k] + j]) & 0xFF] ^ (crc >> 8)
    ids = np.empty(len(starts), dtype=np.uint64)
    ids[by_length] = state ^ np.uint32(0xFFFFFFFF)
    page_starts = np.cumsum([0, *(len(t) + 1 for t in texts[:-1])]) if texts else np.zeros(0, np.int64)
    first_word = np.searchsorted(starts, page_starts)
    counts = np.diff(np.append(first_word, len(starts))).astype(np.int64)
    return Words(counts, ids)


def word_ids(texts: Sequence[str]) -> Words:
    """`Words` of every page: pure-ASCII pages vectorised, the others (Unicode lower-casing and spaces) by
    `str.lower().split()`; both give the ids `zlib.crc32(word.encode())` of the same words."""
    ascii_pos = [i for i, t in enumerate(texts) if t.isascii()]
    fast = _ascii_word_ids([texts[i] for i in ascii_pos])
    if len(ascii_pos) == len(texts):
        return fast
    other_pos = [i for i, t in enumerate(texts) if not t.isascii()]
    hashes = _WordHashes()
    other_words = words_of(texts[i] for i in other_pos)
    other_counts = np.fromiter(map(len, other_words), dtype=np.int64, count=len(other_words))
    other_ids = np.fromiter(map(hashes.__getitem__, itertools.chain.from_iterable(other_words)), dtype=np.uint64)
    both = Words(np.concatenate([fast.counts, other_counts]), np.concatenate([fast.ids, other_ids]))
    return both.take(np.argsort(np.array(ascii_pos + other_pos, dtype=np.int64), kind="stable"))


def exact_duplicates(ids: Sequence[str], texts: Sequence[str], words: Words | None = None) -> Flags:
    """Later pages with the same case- and whitespace-folded text as an earlier one.

    Pages are grouped by a fingerprint of their word ids first; only pages whose fingerprint an earlier page
    shares are folded (`" ".join(text.lower().split())`) and compared, so the verdict is exact.
    """
    words = words if words is not None else word_ids(texts)
    counts, starts = words.counts, words.starts
    sums = np.zeros(len(counts), dtype=np.uint64)
    powers = np.cumprod(np.full(int(counts.max(initial=0)), 1_000_003, dtype=np.uint64))  # wraps: mod 2**64
    for chunk in _page_chunks(counts * 8):
        pages = np.flatnonzero(counts[chunk] > 0) + (chunk.start or 0)
        if not len(pages):
            continue
        lo, hi = int(starts[pages[0]]), int(starts[pages[-1]] + counts[pages[-1]])
        position = np.arange(lo, hi, dtype=np.int64) - np.repeat(starts[pages], counts[pages])
        sums[pages] = np.add.reduceat(words.ids[lo:hi] * powers[position], starts[pages] - lo)
    flags: Flags = {}
    for members in _same_keys(counts, sums):
        first: dict[str, str] = {}
        for pos in members:
            key = " ".join(texts[pos].lower().split())
            if key in first:
                flags[pos] = f"same text as document {first[key]!r}"
            else:
                first[key] = ids[pos]
    return dict(sorted(flags.items()))


def _same_keys(counts: np.ndarray, sums: np.ndarray) -> list[list[int]]:
    """The positions sharing a (count, sum) key with another, per key, each group in ascending order."""
    order = np.lexsort((sums, counts))  # stable: equal keys keep their positions in ascending order
    key_counts, key_sums = counts[order], sums[order]
    new_key = np.ones(len(order), dtype=bool)
    new_key[1:] = (key_counts[1:] != key_counts[:-1]) | (key_sums[1:] != key_sums[:-1])
    bounds = np.append(np.flatnonzero(new_key), len(order))
    shared = np.flatnonzero(np.diff(bounds) > 1)
    return [order[bounds[k] : bounds[k + 1]].tolist() for k in shared.tolist()]


def hashed_embeddings(texts: Sequence[str], dim: int = HASH_DIM, *, words: Words | None = None) -> np.ndarray:
    """Unit-length bag of word bigrams hashed into `dim` buckets: cheap, deterministic, model-free.

    Bigrams, not words or character trigrams: on the sample corpus they keep distinct pages below 0.55
    cosine while a copy with a few edits stays above 0.9. All pages are hashed in one vectorised pass.
    """
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    words = words if words is not None else word_ids(texts)
    out = np.empty((len(texts), dim), dtype=np.float32)

    starts = np.append(words.starts, len(words.ids))

    def fill(chunk: slice) -> None:
        part = Words(words.counts[chunk], words.ids[starts[chunk.start] : starts[chunk.stop]])
        out[chunk] = _hashed_chunk(part.counts, part.ids, dim)

    _in_threads(fill, _page_chunks(words.counts * 8 + dim * 8))
    return out


def _hashed_chunk(lengths: np.ndarray, ids: np.ndarray, dim: int) -> np.ndarray:
    n = len(lengths)
    doc = np.repeat(np.arange(n, dtype=np.int64), lengths)
    pair = doc[:-1] == doc[1:]  # bigrams never cross from one page into the next
    buckets = ((ids[:-1][pair] * np.uint64(1_000_003) + ids[1:][pair]) % np.uint64(dim)).astype(np.int64)
    flat = np.bincount(doc[:-1][pair] * dim + buckets, minlength=n * dim)
    single = np.flatnonzero(lengths == 1)  # one-word pages: the word itself
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat[single * dim + (ids[starts[single]] % np.uint64(dim)).astype(np.int64)] += 1
    out = flat.reshape(n, dim).astype(np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


def near_duplicates(
    ids: Sequence[str], vectors: np.ndarray, threshold: float, *, bands: int = 16, max_offset: int = 32, seed: int = 0
) -> Flags:
    """Later rows whose cosine with an earlier row is >= threshold: LSH buckets, then exact cosine.

    Each band hashes the sign of `bits` random hyperplanes (about log2(rows), so buckets stay small); rows
    sharing a bucket in any band are compared exactly. 16 bands find a pair at cosine 0.95 with
    probability ~0.95 at 100,000 rows and higher below. A bucket larger than `max_offset` compares each row
    with its `max_offset` neighbours only. A candidate pair whose dot product provably stays below the
    threshold (`_Bound`) is dropped before its full dot product: it could never be a row's flagged match.
    """
    n = len(ids)
    if n < 2:
        return {}
    bits = int(min(max(8, np.ceil(np.log2(n)) - 1), 24))
    rng = np.random.default_rng(seed)
    planes = rng.standard_normal((vectors.shape[1], bands * bits)).astype(np.float32)
    codes, bound = _band_codes(vectors, planes, bands, bits)
    best_sim = np.zeros(n, dtype=np.float32)
    best_of = np.full(n, -1, dtype=np.int64)
    for band in range(bands):
        order = np.argsort(codes[band], kind="stable")  # by bucket, then by row: earlier rows first
        sorted_codes = codes[band][order]
        firsts, laters = [], []
        for offset in range(1, min(max_offset, n - 1) + 1):
            same = np.flatnonzero(sorted_codes[:-offset] == sorted_codes[offset:])
            if not len(same):
                break
            firsts.append(order[same])
            laters.append(order[same + offset])
        if not firsts:
            continue
        # the band's pairs in one batch, then the updates offset by offset, in the order a pair-at-a-time
        # loop makes them: on equal cosines the first pair found stays a row's match
        first, later = np.concatenate(firsts), np.concatenate(laters)
        offset_of = np.repeat(np.arange(len(firsts)), [len(f) for f in firsts])
        if bound is not None:
            keep = bound.could_reach(first, later, threshold)
            first, later, offset_of = first[keep], later[keep], offset_of[keep]
        sims = _row_dots(vectors, first, later)
        for part in np.split(np.arange(len(first)), np.flatnonzero(np.diff(offset_of)) + 1):
            better = part[sims[part] > best_sim[later[part]]]
            best_sim[later[better]] = sims[better]
            best_of[later[better]] = first[better]
    return {
        int(j): f"cosine {best_sim[j]:.3f} with document {ids[best_of[j]]!r}"
        for j in np.flatnonzero(best_sim >= threshold)
    }


@dataclass(frozen=True)
class _Bound:
    """An upper bound on each pair's dot product that costs an eighth of it.

    Cauchy-Schwarz on the trailing coordinates: `a . b = head(a) . head(b) + tail(a) . tail(b)
    <= head(a) . head(b) + |tail(a)| |tail(b)|`, with `head` the first `HEAD_DIMS` coordinates (a compact
    copy, so a pair reads 256 bytes instead of 2 KB). On 100,000 distinct pages fewer than 1 % of the
    1.3 M candidate pairs survive it. The margin `BOUND_SLACK * |a| |b|` covers float32 rounding of both
    this bound and the exact dot product (each below `dims * 2**-24 * |a| |b|`), so a pair at or above the
    threshold is never dropped: a dropped pair could never have been a row's flagged match.
    """

    head: np.ndarray  # (rows, HEAD_DIMS), the vectors' leading coordinates
    tail: np.ndarray  # float64 norm of each vector's remaining coordinates
    norm: np.ndarray  # float64 norm of each whole vector

    def could_reach(self, first: np.ndarray, later: np.ndarray, threshold: float) -> np.ndarray:
        """Which pairs' dot products may be >= threshold (a mask)."""
        upper = _row_dots(self.head, first, later) + self.tail[first] * self.tail[later]
        return upper >= threshold - BOUND_SLACK * self.norm[first] * self.norm[later]


def _band_codes(vectors: np.ndarray, planes: np.ndarray, bands: int, bits: int) -> tuple[np.ndarray, _Bound | None]:
    """Each row's bucket in each band (`bands` x rows), and the `_Bound` of its rows (None for short vectors).

    Hyperplanes through the mean: pages of one product share a common direction, and planes through the
    origin would put most of them into a few huge buckets. Row blocks of `PROJECTION_ROWS`: the same
    float32 products as one matrix product of all rows (BLAS sums each one over the same columns), without
    its 200 MB centred copy and 100 MB of projections on 100,000 pages.
    """
    n, dims = vectors.shape
    mean = vectors.mean(axis=0)
    weights = 1 << np.arange(bits, dtype=np.int64)
    codes = np.empty((bands, n), dtype=np.int64)
    pruning = dims >= 2 * HEAD_DIMS
    head = np.empty((n, HEAD_DIMS if pruning else 0), dtype=vectors.dtype)
    tail, norm = np.empty(n, dtype=np.float64), np.empty(n, dtype=np.float64)
    for start in range(0, n, PROJECTION_ROWS):
        rows = slice(start, min(start + PROJECTION_ROWS, n))
        block = vectors[rows]
        signs = ((block - mean) @ planes) > 0
        codes[:, rows] = (signs.reshape(-1, bands, bits).astype(np.int64) @ weights).T
        if pruning:
            head[rows] = block[:, :HEAD_DIMS]
            tail[rows] = np.einsum("ij,ij->i", block[:, HEAD_DIMS:], block[:, HEAD_DIMS:], dtype=np.float64)
            norm[rows] = tail[rows] + np.einsum(
                "ij,ij->i", block[:, :HEAD_DIMS], block[:, :HEAD_DIMS], dtype=np.float64
            )
    if not pruning:
        return codes, None
    return codes, _Bound(head, np.sqrt(tail), np.sqrt(norm))


def _row_dots(vectors: np.ndarray, first: np.ndarray, later: np.ndarray, rows: int = 1024) -> np.ndarray:
    """`vectors[first[k]] . vectors[later[k]]` for each k, `rows` pairs at a time: the same float32 sums as
    one einsum over all pairs, without gathering two copies of 500 MB on 100,000 pages."""
    out = np.empty(len(first), dtype=np.float32)

    def fill(at: int) -> None:
        out[at : at + rows] = np.einsum("ij,ij->i", vectors[first[at : at + rows]], vectors[later[at : at + rows]])

    _in_threads(fill, range(0, len(first), rows))
    return out


# One pass of RE2 (pyarrow) over the pure-ASCII pages finds every page in which the encoding and PII checks
# below could find anything; only those, and every page with non-ASCII text, are checked one by one with
# Python's `re`. On ASCII text each alternative matches exactly what the check's own pattern needs to match
# (`\d` is [0-9]; `str.split` whitespace is [\t-\r\x1c-\x20]), so a page the screen passes has no finding.
_SCREEN = "|".join(
    (
        r"[0-9][0-9 ()-]{8,}[0-9]",  # _PHONE
        _KEYS.pattern,
        r"[^\t-\r\x1c-\x20]{32,}",  # a token long enough for _key_like
        "@",  # _EMAIL
        _CONTROL.pattern,  # (_MOJIBAKE needs non-ASCII text)
    )
)


def screen(texts: Sequence[str]) -> list[int]:
    """Positions of the pages the encoding and PII checks must look at: see `_SCREEN`."""
    import pyarrow.compute as pc

    ascii_pos = [i for i, t in enumerate(texts) if t.isascii()]
    found = set(range(len(texts))).difference(ascii_pos)
    if ascii_pos:
        hits = pc.match_substring_regex(_ascii_array([texts[i] for i in ascii_pos]), _SCREEN)
        found.update(ascii_pos[i] for i in np.flatnonzero(hits.to_numpy(zero_copy_only=False)))
    return sorted(found)


def _ascii_array(texts: Sequence[str]) -> Any:
    """Pure-ASCII pages as one arrow string array over a single joined buffer: one copy of the text,
    where `pa.array(texts)` converts page by page (most of the screen's time on 100,000 pages)."""
    import pyarrow as pa

    data = "".join(texts).encode("ascii")
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=offsets[1:])
    return pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(offsets), pa.py_buffer(data))


def encoding_problems(texts: Sequence[str], candidates: Iterable[int] | None = None) -> Flags:
    """Replacement characters, mojibake and control characters; `candidates`: the pages to look at
    (default `screen(texts)`), any other page has none."""
    flags: Flags = {}
    for pos in screen(texts) if candidates is None else candidates:
        text = texts[pos]
        if not text.isascii() and (m := _MOJIBAKE.search(text)):
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
        if text.isascii():
            continue
        letters = [c for c in text if c.isalpha()]
        if not letters:
            continue
        foreign = sum(1 for c in letters if not ("LATIN" in unicodedata.name(c, "") or c.isascii()))
        share = foreign / len(letters)
        if share > vs.max_foreign_script_share:
            flags[pos] = f"{share:.0%} of letters are not Latin (limit {vs.max_foreign_script_share:.0%})"
    return flags


def _phone_like(text: str, match: re.Match[str]) -> bool:
    if match.start() and (text[match.start() - 1].isalnum() or text[match.start() - 1] in "._:/-"):
        return False  # inside a word, a version, a path or a time
    if match.end() < len(text) and (text[match.end()].isalnum() or text[match.end()] in "_:/-"):
        return False
    candidate = match.group()
    digits = sum(c.isdigit() for c in candidate)
    if not 10 <= digits <= 15:
        return False
    return not re.search(r"\d{4}-\d{2}-\d{2}", candidate)  # dates and date ranges


def _key_like(candidate: str) -> bool:
    """A long token mixing lower case, upper case and digits with many distinct characters."""
    if not re.fullmatch(r"[A-Za-z0-9+_=-]{32,}", candidate):
        return False  # paths, URLs, assignments and lists are not keys
    classes = sum(bool(re.search(p, candidate)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    return classes == 3 and len(set(candidate)) >= 16


def pii_findings(texts: Sequence[str], vs: ValidationSettings, candidates: Iterable[int] | None = None) -> Flags:
    """Emails (outside the allowed and reserved domains), phone numbers and key-like strings; `candidates`:
    the pages to look at (default `screen(texts)`), any other page has none."""
    allowed = {d.lower() for d in vs.pii_allowed_email_domains}
    flags: Flags = {}
    for pos in screen(texts) if candidates is None else candidates:
        text = texts[pos]
        found: list[str] = []
        if "@" in text:
            found += [
                "email"
                for m in _EMAIL.finditer(text)
                if m.group(1).lower() not in allowed and not _reserved(m.group(1))
            ]
        found += ["phone number" for m in _PHONE.finditer(text) if _phone_like(text, m)]
        found += ["key-like string" for _ in _KEYS.finditer(text)]
        tokens = (t.strip(_TOKEN_EDGES) for t in text.split())
        found += ["key-like string" for t in tokens if len(t) >= 32 and _key_like(t)]
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
