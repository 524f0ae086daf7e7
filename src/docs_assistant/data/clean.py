"""Cleaning before validation: what is validated is byte for byte what is ingested.

Unicode NFC (so "é" typed two ways hashes the same), Unix newlines, no trailing spaces, at most one blank
line in a row, and boilerplate (HTML comments, "Edit this page" lines, configurable) removed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")


@lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def normalize_text(text: str) -> str:
    """NFC, `\\n` newlines, no trailing whitespace on a line, no runs of blank lines, one final newline."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _BLANK_RUNS.sub("\n\n", _TRAILING_SPACE.sub("", text))
    return text.strip() + "\n" if text.strip() else ""


def normalize_field(value: str) -> str:
    """One-line fields (titles, questions): NFC and single spaces."""
    return " ".join(unicodedata.normalize("NFC", value).split())


def strip_boilerplate(text: str, patterns: Sequence[str]) -> str:
    for pattern in _compiled(tuple(patterns)):
        text = pattern.sub("", text)
    return text


def clean_body(text: str, patterns: Sequence[str] = ()) -> str:
    """The one cleaning step both `validate` and `ingest` apply to a document body."""
    return normalize_text(strip_boilerplate(unicodedata.normalize("NFC", text), patterns))
