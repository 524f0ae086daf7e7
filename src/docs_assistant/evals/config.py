"""The eval suites' configuration (`evals/suites.toml`) and datasets (JSONL), validated when loaded.

Every problem names the file, the line and the field, so a typo in a threshold is fixed in seconds,
not found later as a gate that silently never fails.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docs_assistant.errors import DataError
from docs_assistant.evals.metrics import METRICS, SUITES
from docs_assistant.io import jsonl_objects

#: fields every dataset row of a suite must have, with their types
DATASET_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "retrieval": {"id": str, "question": str, "doc_ids": list},
    "answers": {"id": str, "question": str, "reference": str, "facts": list, "answerable": bool},
    "likelihood": {"id": str, "question": str, "reference": str},
    "cost": {"id": str, "question": str},
    "safety": {"id": str, "category": str, "prompt": str, "success_markers": list},
    "heldout": {"id": str, "category": str, "prompt": str},  # the safety suite's `heldout` attack set
}
SAFETY_CATEGORIES = {"injection", "extraction", "canary", "toxic"}


@dataclass(frozen=True)
class MetricSpec:
    """One gated metric: an absolute threshold (optional) and the allowed regression against the baseline."""

    name: str
    threshold: float | None
    tolerance: float
    regression: bool

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.name].higher_is_better


@dataclass(frozen=True)
class SuiteConfig:
    name: str
    datasets: tuple[Path, ...]
    metrics: dict[str, MetricSpec]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalConfig:
    path: Path
    variants: tuple[str, ...]
    baseline: Path | None
    repeat: int
    min_pass: int
    suites: dict[str, SuiteConfig]


def _line_of(text: str, *keys: str) -> int | None:
    """1-based line of a dotted key: its deepest table header, then the first remaining key below it."""
    lines = text.splitlines()
    start, found, rest = 0, None, keys
    for n in range(len(keys), 0, -1):
        header = re.compile(r"^\s*\[+\s*" + r"\s*\.\s*".join(re.escape(k) for k in keys[:n]) + r"\s*\]")
        hit = next((i for i, line in enumerate(lines) if header.search(line)), None)
        if hit is not None:
            start, found, rest = hit, hit + 1, keys[n:]
            break
    if rest:  # inline tables keep deeper keys on the first key's line
        key = re.compile(rf"^\s*\"?{re.escape(rest[0])}\"?\s*=")
        for i in range(start, len(lines)):
            if i > start and found is not None and lines[i].lstrip().startswith("["):
                break
            if key.search(lines[i]):
                return i + 1
    return found


def _error(path: Path, text: str, keys: tuple[str, ...], message: str, hint: str | None = None) -> DataError:
    return DataError(message, file=path, line=_line_of(text, *keys), field=".".join(keys), hint=hint)


def _number(value: Any, path: Path, text: str, keys: tuple[str, ...]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _error(path, text, keys, f"must be a number, got {value!r}")
    return float(value)


def load_eval_config(path: Path) -> EvalConfig:
    """Parse and check the suites file; dataset paths resolve against its directory."""
    if not path.is_file():
        raise DataError("eval config not found", file=path, hint="set evals.config or pass --config")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"at line (\d+)", str(exc))
        line = int(at[1]) if at else len(text.splitlines()) or None
        raise DataError(f"not valid TOML: {exc}", file=path, line=line) from None
    run = data.get("run", {})
    unknown_top = sorted(set(data) - {"run", "suites"})
    if unknown_top:
        raise _error(path, text, (unknown_top[0],), "unknown table", hint="expected [run] and [suites.<name>]")
    variants = run.get("variants", [])
    if not isinstance(variants, list) or not variants or not all(isinstance(v, str) for v in variants):
        raise _error(path, text, ("run", "variants"), "must be a non-empty list of 'prompt-id@version'")
    for variant in variants:
        if "@" not in variant:
            raise _error(path, text, ("run", "variants"), f"{variant!r} is not 'prompt-id@version'")
    repeat, min_pass = run.get("repeat", 1), run.get("min_pass", 1)
    if not isinstance(repeat, int) or not isinstance(min_pass, int) or not 1 <= min_pass <= repeat:
        raise _error(path, text, ("run", "min_pass"), f"need 1 <= min_pass <= repeat, got {min_pass} and {repeat}")
    baseline = run.get("baseline")
    suites: dict[str, SuiteConfig] = {}
    for name, body in (data.get("suites") or {}).items():
        suites[name] = _suite(path, text, name, body)
    if not suites:
        raise _error(path, text, ("suites",), "no suites declared", hint="add [suites.<name>] tables")
    return EvalConfig(
        path=path,
        variants=tuple(variants),
        baseline=(path.parent / baseline) if isinstance(baseline, str) and baseline else None,
        repeat=repeat,
        min_pass=min_pass,
        suites=suites,
    )


def _suite(path: Path, text: str, name: str, body: Any) -> SuiteConfig:
    where = ("suites", name)
    if name not in SUITES:
        raise _error(path, text, where, f"unknown suite '{name}'; known: {', '.join(SUITES)}")
    if not isinstance(body, dict):
        raise _error(path, text, where, "must be a table")
    raw = body.get("datasets")
    if not isinstance(raw, list) or not raw or not all(isinstance(d, str) for d in raw):
        raise _error(path, text, (*where, "datasets"), "must be a non-empty list of JSONL paths")
    datasets = tuple(path.parent / d for d in raw)
    for dataset in datasets:
        if not dataset.is_file():
            raise _error(path, text, (*where, "datasets"), f"dataset not found: {dataset}")
    metrics: dict[str, MetricSpec] = {}
    for metric, spec in (body.get("metrics") or {}).items():
        keys = (*where, "metrics", metric)
        if metric not in METRICS or METRICS[metric].suite != name:
            known = ", ".join(m for m, d in METRICS.items() if d.suite == name)
            raise _error(path, text, keys, f"unknown metric '{metric}' for suite '{name}'; known: {known}")
        if not isinstance(spec, dict):
            raise _error(path, text, keys, "must be a table such as { threshold = 0.8, tolerance = 0.02 }")
        extra = sorted(set(spec) - {"threshold", "tolerance", "regression", "why"})
        if extra:
            raise _error(path, text, (*keys, extra[0]), "unknown key; use threshold, tolerance, regression, why")
        threshold = spec.get("threshold")
        metrics[metric] = MetricSpec(
            name=metric,
            threshold=None if threshold is None else _number(threshold, path, text, (*keys, "threshold")),
            tolerance=_number(spec.get("tolerance", 0.0), path, text, (*keys, "tolerance")),
            regression=bool(spec.get("regression", True)),
        )
    options = {k: v for k, v in body.items() if k not in {"datasets", "metrics"}}
    if name == "safety" and "heldout" in options:
        heldout = options["heldout"]
        # a project path (like data/), not relative to this file: the set is the guardrails', not one suite copy's
        if not isinstance(heldout, str) or not Path(heldout).is_file():
            raise _error(
                path,
                text,
                (*where, "heldout"),
                f"held-out attack set not found: {heldout!r}",
                hint="a JSONL path from the project root, e.g. 'evals/safety/heldout_attacks.jsonl'",
            )
    return SuiteConfig(name, datasets, metrics, options)


def load_dataset(path: Path, suite: str) -> list[dict[str, Any]]:
    """Rows of one JSONL dataset, each checked for the fields its suite reads; ids unique."""
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    fields = DATASET_FIELDS[suite]
    for number, row in jsonl_objects(path):
        for name, kind in fields.items():
            if name not in row:
                raise DataError("missing", file=path, line=number, field=name)
            if not isinstance(row[name], kind) or (kind is str and not row[name].strip()):
                raise DataError(
                    f"must be a non-empty {getattr(kind, '__name__', kind)}", file=path, line=number, field=name
                )
        if suite == "safety" and row["category"] not in SAFETY_CATEGORIES:
            raise DataError(
                f"unknown category {row['category']!r}; use {sorted(SAFETY_CATEGORIES)}",
                file=path,
                line=number,
                field="category",
            )
        if row["id"] in seen:
            raise DataError(f"duplicate id, first on line {seen[row['id']]}", file=path, line=number, field="id")
        seen[row["id"]] = number
        rows.append(row)
    if not rows:
        raise DataError("dataset is empty", file=path)
    return rows
