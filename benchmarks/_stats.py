"""Summary statistics and result files shared by every benchmark.

A single timing on a shared machine means little, so results are distributions (median, p95, min/max,
IQR) and targets compare two distributions measured side by side in the same run.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from docs_assistant.io import atomic_write_json, atomic_write_text
from docs_assistant.reports import markdown_table

SCHEMA_VERSION = 1


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    """Median and spread of `samples`; the same keys whatever the sample count, so JSON stays stable."""
    if not samples:
        raise ValueError("no samples to summarize")
    data = sorted(samples)
    # 5 % steps, interpolated between observed values ("inclusive": never outside min..max)
    q = statistics.quantiles(data, n=20, method="inclusive") if len(data) > 1 else [data[0]] * 19
    return {
        "n": len(data),
        "min": _r(data[0]),
        "p25": _r(q[4]),
        "p50": _r(statistics.median(data)),
        "p75": _r(q[14]),
        "p95": _r(q[18]),
        "max": _r(data[-1]),
        "mean": _r(statistics.fmean(data)),
        "iqr": _r(q[14] - q[4]),
    }


def ratio(numerator: float, denominator: float) -> float:
    return _r(numerator / denominator) if denominator else float("inf")


def _r(value: float) -> float:
    return round(value, 4)


def machine() -> dict[str, Any]:
    """What the numbers were measured on: ratios travel between machines better than times, but not fully."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "versions": {name: _version(name) for name in ("docs-assistant", "lancedb", "torch")},
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@dataclass
class BenchResult:
    """One benchmark's outcome: the target it states, the value it compares, and the evidence."""

    name: str
    description: str
    repeat: int
    target: str
    target_metric: str
    measured: float
    met: bool
    headline: str
    results: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    target_applies_to: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "benchmark": self.name,
            "description": self.description,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "repeat": self.repeat,
            "params": self.params,
            "target": self.target,
            "target_metric": self.target_metric,
            "target_applies_to": self.target_applies_to,
            "measured": self.measured,
            "met": self.met,
            "headline": self.headline,
            "results": self.results,
        }


SUMMARY_HEADERS = ["benchmark", "measured", "target", "met", "details", "date"]


def summary_row(data: dict[str, Any]) -> list[str]:
    met = "yes" if data["met"] else "**no**"
    return [data["benchmark"], f"{data['measured']}", data["target"], met, data["headline"], data["date"]]


def write_result(out: Path, data: dict[str, Any]) -> Path:
    path = out / f"{data['benchmark']}.json"
    atomic_write_json(path, data)
    return path


def write_summary(out: Path, results: Sequence[dict[str, Any]]) -> str:
    """`summary.md` over every result in `out` (one row each, in the order given), written atomically."""
    lines = [
        "## Benchmarks",
        "",
        markdown_table(SUMMARY_HEADERS, [summary_row(r) for r in results]),
        "",
    ]
    notes = [f"- `{r['benchmark']}`: target applies to {r['target_applies_to']}" for r in results]
    notes = [n for n, r in zip(notes, results, strict=True) if r["target_applies_to"]]
    if notes:
        lines += [*notes, ""]
    if results:
        m = results[0]["machine"]
        lines.append(f"Machine: {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}.")
        lines.append("")
    text = "\n".join(lines)
    atomic_write_text(out / "summary.md", text)
    return text
