"""What an environment promises: the service-level objectives a deployment must meet to be promoted.

One `Gate` per environment, read from the `[gate]` table of `deploy/environments/<env>.toml`. The
thresholds are checked against what the load test measured; a gate that could never fail (a zero or
negative bound, percentiles out of order, an achieved rate above the requested one) is refused at load.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Gate(BaseModel):
    """Startup and latency objectives, and the load that tests them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_startup_s: float = Field(gt=0, description="update start -> every replica ready, seconds")
    p50_ms: float = Field(gt=0, description="median /v1/answer latency, milliseconds")
    p95_ms: float = Field(gt=0, description="95th percentile latency, milliseconds")
    p99_ms: float = Field(gt=0, description="99th percentile latency, milliseconds")
    max_error_rate: float = Field(ge=0, lt=1, description="failed requests / all requests, after warm-up")
    min_rps: float = Field(gt=0, description="achieved requests per second, after warm-up")
    arrival_rate: float = Field(gt=0, description="requested arrivals per second (open loop)")
    duration_s: float = Field(gt=0, description="the whole test, warm-up included, seconds")
    warmup_s: float = Field(default=5.0, ge=0, description="first seconds whose requests are not measured")

    @model_validator(mode="after")
    def _coherent(self) -> Gate:
        if not self.p50_ms <= self.p95_ms <= self.p99_ms:
            raise ValueError(f"percentiles out of order: p50 {self.p50_ms} <= p95 {self.p95_ms} <= p99 {self.p99_ms}")
        if self.min_rps > self.arrival_rate:
            raise ValueError(f"min_rps {self.min_rps} exceeds arrival_rate {self.arrival_rate}: it could never pass")
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"warmup_s {self.warmup_s} leaves nothing of duration_s {self.duration_s} to measure")
        return self
