"""The gate's verdict: every objective, measured against what the environment allows (locust-free).

Startup is checked only when the deployer measured it (`--startup-s`); otherwise it shows as "not
measured" and cannot fail the gate. An objective with nothing to measure (no request completed) fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from docs_assistant.loadtest.gate import Gate
from docs_assistant.loadtest.results import Measured
from docs_assistant.reports import markdown_table, write_report


@dataclass(frozen=True)
class Objective:
    """One objective: `measured` must stay at or below (`max`) or at or above (`min`) `allowed`."""

    name: str
    measured: float | None
    allowed: float
    bound: Literal["max", "min"]
    unit: str
    required: bool = True  # False: not measuring it is no failure (startup without --startup-s)

    @property
    def passed(self) -> bool | None:
        """True or False; None when not measured and not required."""
        if self.measured is None:
            return None if not self.required else False
        return self.measured <= self.allowed if self.bound == "max" else self.measured >= self.allowed

    @property
    def status(self) -> str:
        return {True: "pass", False: "FAIL", None: "not measured"}[self.passed]

    def describe(self) -> str:
        """`p95_ms: measured 412.3 ms, allowed <= 300 ms: FAIL`."""
        if self.measured is not None:
            measured = f"measured {_fmt(self.measured, self.unit)}"
        else:
            measured = "not measured" if not self.required else "nothing measured"
        relation = "<=" if self.bound == "max" else ">="
        verdict = "not checked" if self.passed is None else self.status
        return f"{self.name}: {measured}, allowed {relation} {_fmt(self.allowed, self.unit)}: {verdict}"


#: a breached objective
Violation = Objective


def objectives(gate: Gate, measured: Measured) -> list[Objective]:
    """Every objective of the gate with what was measured for it, in a fixed order."""
    return [
        Objective("startup_s", measured.startup_s, gate.max_startup_s, "max", "s", required=False),
        Objective("p50_ms", measured.p50_ms, gate.p50_ms, "max", "ms"),
        Objective("p95_ms", measured.p95_ms, gate.p95_ms, "max", "ms"),
        Objective("p99_ms", measured.p99_ms, gate.p99_ms, "max", "ms"),
        Objective("error_rate", measured.error_rate, gate.max_error_rate, "max", ""),
        Objective("rps", measured.achieved_rps, gate.min_rps, "min", "req/s"),
    ]


def check(gate: Gate, measured: Measured) -> list[Violation]:
    """The breached objectives; empty when the gate passes."""
    return [o for o in objectives(gate, measured) if o.passed is False]


def summary_of(gate: Gate, measured: Measured, *, url: str, environment: str | None) -> dict[str, Any]:
    rows = objectives(gate, measured)
    failed = [o.name for o in rows if o.passed is False]
    return {
        "stage": "loadtest",
        "environment": environment,
        "url": url,
        "passed": not failed,
        "failed": failed,
        "startup_measured": measured.startup_s is not None,
        "gate": gate.model_dump(),
        "measured": measured.as_dict(),
        "objectives": [
            {"name": o.name, "measured": o.measured, "allowed": o.allowed, "bound": o.bound, "status": o.status}
            for o in rows
        ],
    }


def markdown_of(summary: dict[str, Any]) -> str:
    env = f" ({summary['environment']})" if summary["environment"] else ""
    verdict = "passed" if summary["passed"] else "FAILED: " + ", ".join(summary["failed"])
    table = markdown_table(
        ["objective", "measured", "allowed", "result"],
        [
            (
                o["name"],
                "—" if o["measured"] is None else _fmt(o["measured"], ""),
                ("<= " if o["bound"] == "max" else ">= ") + _fmt(o["allowed"], ""),
                o["status"],
            )
            for o in summary["objectives"]
        ],
    )
    m, load = summary["measured"], summary["measured"]["load"]
    lines = [
        f"## Load-test gate{env}: {verdict}",
        "",
        f"`{summary['url']}`: {m['requests']} requests measured over {m['measured_s']:.1f} s after a "
        f"{load.get('warmup_s', 0):g} s warm-up, {m['failures']} failed, {m['unfinished']} unfinished; "
        f"{load.get('users', '?')} users pacing {load.get('arrival_rate', '?')} arrivals/s.",
    ]
    if load.get("generator_cpu_share") is not None:
        lines += ["", f"The load generator used {load['generator_cpu_share']:.0%} of one core."]
    lines += [
        "",
        table,
    ]
    if not summary["startup_measured"]:
        lines += ["", "Startup was not measured (no `--startup-s`): it does not fail the gate."]
    return "\n".join(lines) + "\n"


def write_summary(reports_dir: Path, summary: dict[str, Any]) -> Path:
    """`reports/loadtest/[<env>/]summary.json` and `summary.md`; returns the directory."""
    from docs_assistant.loadtest.inputs import report_dir

    stage = report_dir(reports_dir, summary["environment"]).relative_to(reports_dir).as_posix()
    return write_report(reports_dir, stage, summary, markdown_of(summary))


def _fmt(value: float, unit: str) -> str:
    text = f"{value:.4g}" if abs(value) < 1 else f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}".rstrip()
