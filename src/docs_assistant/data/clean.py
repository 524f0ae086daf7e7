"""Cleaning before validation: what is validated is byte for byte what is ingested.

Unicode NFC (so "é" typed two ways hashes the same), Unix newlines, no trailing spaces, at most one blank
line in a row, and boilerplate (HTML comments, "Edit this page" lines, configurable) removed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

_BLANK_RUNS = re.compile(r"\n{3,}")


@lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def _nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def normalize_text(text: str) -> str:
    """NFC, `\\n` newlines, no trailing whitespace on a line, no runs of blank lines, one final newline."""
    text = _nfc(text).replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))  # str methods: 10x a regex here
    text = _BLANK_RUNS.sub("\n\n", text).strip()
    return text + "\n" if text else ""


def normalize_field(value: str) -> str:
    """One-line fields (titles, questions): NFC and single spaces."""
    return " ".join(_nfc(value).split())


def strip_boilerplate(text: str, patterns: Sequence[str]) -> str:
    for pattern in _compiled(tuple(patterns)):
        text = pattern.sub("", text)
    return text


def clean_body(text: str, patterns: Sequence[str] = ()) -> str:
    """The one cleaning step both `validate` and `ingest` apply to a document body."""
    return normalize_text(strip_boilerplate(_nfc(text), patterns))
