"""What makes a question answerable, checked the same way by the CLI, the pipeline and the service.

Light on purpose (standard library only): the service checks a request before it touches the pipeline.
"""

from __future__ import annotations

import unicodedata

LIMIT_HINT = "shorten it, or raise setting 'limits.max_question_chars'"
LONE_SURROGATE = "contains a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not text"


def text_problem(text: str) -> str | None:
    """Why a string is not text at all, or None: a lone surrogate, which JSON's escapes allow.

    Python decodes `"\\ud800"` to a str that every UTF-8 encoder refuses (the embedder, LanceDB, the
    response encoder), so a request carrying one in any field fails late, as a 500, unless refused first.
    """
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return LONE_SURROGATE
    return None


def question_problem(text: str, max_chars: int) -> str | None:
    """Why a (stripped) question cannot be answered, or None.

    Empty; a lone surrogate (not text: the embedder and the JSON encoder would fail on it later, as a 500);
    nothing but invisible characters (whitespace and Unicode format characters such as zero-width spaces);
    longer than the limit.
    """
    if not text:
        return "must not be empty"
    if problem := text_problem(text):
        return problem
    if all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text):
        return "must contain visible text, not only invisible (format) characters"
    if len(text) > max_chars:
        return f"too long: {len(text)} characters, the limit is {max_chars}"
    return None
