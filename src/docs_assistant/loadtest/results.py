"""What a load test measured, computed from every request's outcome (locust-free, so it is unit-tested alone).

The gate's numbers come from each request's exact latency, not from locust's statistics, which round
response times above 100 ms to two significant digits; locust's CSV and HTML report show the same run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One request to the answer endpoint: when it completed, how long it took, whether it succeeded (2xx)."""

    completed_at: float
    latency_ms: float
    ok: bool


@dataclass(frozen=True)
class Measured:
    """The measurement window's numbers: after warm-up until the last request of the test completed."""

    requests: int  # completed in the window, whatever their outcome
    failures: int  # non-2xx answers and transport errors among them
    unfinished: int  # still without an answer when the test ended: counted as failures
    error_rate: float | None  # (failures + unfinished) / (requests + unfinished); None when nothing was sent
    p50_ms: float | None  # latency percentiles over the successful requests; None when none succeeded
    p95_ms: float | None
    p99_ms: float | None
    achieved_rps: float  # completed requests / measured seconds
    measured_s: float
    startup_s: float | None = None  # passed in by the deployer (--startup-s); None: not measured
    load: dict[str, Any] = field(default_factory=dict)  # the load as run: users, pacing, duration, warm-up
    service: dict[str, Any] = field(default_factory=dict)  # what the service said of itself (/readyz phases)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100): a latency some request really had, never an interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def measure(
    samples: Sequence[Sample], *, window_start: float, window_end: float, unfinished: int = 0, **extra: Any
) -> Measured:
    """Aggregate the samples completed at or after `window_start`; `window_end` is when the test stopped."""
    kept = [s for s in samples if s.completed_at >= window_start]
    latest = max((s.completed_at for s in kept), default=window_end)
    measured_s = max(window_end, latest) - window_start
    failures = sum(not s.ok for s in kept)
    sent = len(kept) + unfinished
    latencies = [s.latency_ms for s in kept if s.ok]  # a fast error must not flatter the latency

    def pct(q: float) -> float | None:
        return round(percentile(latencies, q), 3) if latencies else None

    return Measured(
        requests=len(kept),
        failures=failures,
        unfinished=unfinished,
        error_rate=(failures + unfinished) / sent if sent else None,
        p50_ms=pct(50),
        p95_ms=pct(95),
        p99_ms=pct(99),
        achieved_rps=len(kept) / measured_s if measured_s > 0 else 0.0,
        measured_s=round(measured_s, 3),
        **extra,
    )
