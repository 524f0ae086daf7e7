"""Prometheus metrics, in a registry of the app's own (two apps in one process never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

PREFIX = "docs_assistant"
#: request paths reported as themselves; any other path is "other", so label cardinality stays bounded
KNOWN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/v1/models", "/v1/answer", "/v1/chat/completions", "/v1/feedback"}
)


#: prometheus_client's default latency buckets, which stop at 10 s
BASE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def latency_buckets(timeout_s: float) -> tuple[float, ...]:
    """The default buckets, doubled on from 10 s up to the request timeout, which is the last bound: a request
    that took 25 s of a 30 s deadline then lands in a bucket, not only in +Inf."""
    buckets = [b for b in BASE_BUCKETS if b < timeout_s]
    while buckets and buckets[-1] * 2 < timeout_s:
        buckets.append(buckets[-1] * 2)
    return (*buckets, float(timeout_s))


class Metrics:
    def __init__(self, timeout_s: float = BASE_BUCKETS[-1]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests", "HTTP requests served", ["endpoint", "method", "status"], registry=r
        )
        self.latency = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "HTTP request latency",
            ["endpoint", "method", "status"],
            buckets=latency_buckets(timeout_s),
            registry=r,
        )
        self.in_flight = Gauge(f"{PREFIX}_in_flight_requests", "HTTP requests being served", registry=r)
        self.rejected = Counter(f"{PREFIX}_rejected", "requests refused before any work", ["reason"], registry=r)
        self.generated_tokens = Counter(f"{PREFIX}_generated_tokens", "completion tokens generated", registry=r)
        self.retrieval = Histogram(
            f"{PREFIX}_retrieval_duration_seconds",
            "embedding + vector search time per answer",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.startup_phase = Gauge(
            f"{PREFIX}_startup_phase_seconds", "duration of each start-up phase", ["phase"], registry=r
        )
        self.ready = Gauge(f"{PREFIX}_ready", "1 once start-up finished and the warm-up generated", registry=r)
        self.guardrail_blocked = Counter(
            f"{PREFIX}_guardrail_blocked", "answers refused by a guardrail", ["reason"], registry=r
        )
        self.redactions = Counter(f"{PREFIX}_guardrail_redactions", "PII redacted from answers", ["kind"], registry=r)
        self.build = Info(f"{PREFIX}_build", "model and prompt this process serves", registry=r)

    @staticmethod
    def endpoint(path: str) -> str:
        return path if path in KNOWN_PATHS else "other"
