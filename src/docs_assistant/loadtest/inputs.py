"""What a load test reads: the gate (a `[gate]` table in a TOML file, plus overrides) and the questions it asks.

Locust-free: the CLI validates its input here before the load test imports locust.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from docs_assistant.errors import ConfigError, DataError
from docs_assistant.io import jsonl_objects
from docs_assistant.loadtest.gate import Gate

GATE_HINT = "see deploy/environments/*.toml for a [gate] table"


def load_gate(path: Path | None, overrides: dict[str, Any] | None = None) -> Gate:
    """The `[gate]` table of `path` (if given) with `overrides` on top; every bad field named with its source."""
    where = str(path) if path is not None else "the command-line options"
    table: dict[str, Any] = {}
    if path is not None:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the gate file: {exc.strerror}", where=path) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", where=path) from None
        if not isinstance(document.get("gate"), dict):
            raise ConfigError("no [gate] table", where=path, hint=GATE_HINT)
        table = document["gate"]
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return Gate(**(table | given))
    except ValidationError as exc:
        problems = [_problem(err, given) for err in exc.errors()]
        raise ConfigError("; ".join(problems), where=where, hint=GATE_HINT) from None


def _problem(err: Any, given: dict[str, Any]) -> str:
    msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    if not err["loc"]:  # a check across fields (Gate._coherent): its message names them
        return f"[gate]: {msg}"
    name = ".".join(str(p) for p in err["loc"])
    source = f"option --{name.replace('_', '-')}" if name in given else f"field 'gate.{name}'"
    return f"{source}: {msg}; got {err['input']!r}"


def load_questions(path: Path) -> list[str]:
    """The non-empty `question` field of every line of a JSONL file (the eval set)."""
    questions = []
    for number, row in jsonl_objects(path):
        question = row.get("question")
        if not isinstance(question, str) or not question.strip():
            raise DataError("missing or empty", file=path, line=number, field="question")
        questions.append(question)
    if not questions:
        raise DataError("no questions to ask", file=path, hint="a JSONL file with a 'question' field on each line")
    return questions
