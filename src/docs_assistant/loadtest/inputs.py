"""What a load test reads: the gate (a `[gate]` table in a TOML file, plus overrides) and the questions it asks.

Locust-free: the CLI validates its input here before the load test imports locust.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from docs_assistant.config import Settings
from docs_assistant.errors import ConfigError, DataError
from docs_assistant.io import jsonl_objects
from docs_assistant.loadtest.gate import Gate

GATE_HINT = "see deploy/environments/*.toml for a [gate] table"
STAGE = "loadtest"
URL = re.compile(r"https?://[^\s/]+(/\S*)?")


def report_dir(reports_dir: Path, environment: str | None) -> Path:
    """`reports/loadtest/[<env>/]`: where a load test writes its summary and locust's report (one place)."""
    return reports_dir / STAGE / environment if environment else reports_dir / STAGE


@dataclass(frozen=True)
class LoadTestPlan:
    """A load test's checked inputs: whom to load, under which gate, with which questions, reported where."""

    url: str
    gate: Gate
    questions: list[str]
    out_dir: Path
    environment: str | None
    startup_s: float | None

    def describe(self) -> str:
        gate = self.gate
        return (
            f"loadtest: {gate.arrival_rate:g} arrivals/s for {gate.duration_s:g} s ({gate.warmup_s:g} s warm-up) "
            f"against {self.url}"
        )


def plan_load_test(
    settings: Settings,
    *,
    url: str | None = None,
    gate_file: Path | None = None,
    environment: str | None = None,
    startup_s: float | None = None,
    questions: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> LoadTestPlan:
    """Check every input before locust is imported; an environment's own file supplies the gate by default."""
    from docs_assistant.deploy.environments import ENVIRONMENTS_DIR, NAME, load_environment

    if environment is not None and not NAME.fullmatch(environment):  # the rule environment files' names follow
        raise ConfigError(
            f"not an environment name: {environment!r}",
            where="--env",
            hint="a lowercase letter, then letters, digits and -",
        )
    if gate_file is None and environment is not None:
        load_environment(environment, ENVIRONMENTS_DIR)  # the whole file is checked, not only its gate
        gate_file = ENVIRONMENTS_DIR / f"{environment}.toml"
    gate = load_gate(gate_file, overrides)
    url = url or f"http://127.0.0.1:{settings.serve.port}"
    if not URL.fullmatch(url):
        raise ConfigError(f"not an http(s) base URL: {url!r}", where="--url", hint="e.g. http://127.0.0.1:8000")
    asked = load_questions(questions or settings.evals.config.parent / "datasets" / "qa.jsonl")
    if startup_s is not None and startup_s < 0:
        raise ConfigError(f"must be >= 0, got {startup_s}", where="--startup-s")
    out_dir = report_dir(settings.paths.reports_dir, environment)
    return LoadTestPlan(url, gate, asked, out_dir, environment, startup_s)


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
