"""The service's latency histogram reaches its request timeout, so slow answers are measured, not just counted."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from docs_assistant.serve.metrics import Metrics, latency_buckets


@pytest.mark.parametrize("timeout_s", [0.5, 10.0, 30.0, 45.0, 600.0])
def test_the_last_bucket_is_the_request_timeout(timeout_s: float) -> None:
    buckets = latency_buckets(timeout_s)
    assert buckets[-1] == timeout_s
    assert list(buckets) == sorted(set(buckets))  # strictly increasing
    assert buckets[0] <= 0.01  # fast answers keep their resolution


def test_a_slow_request_lands_in_a_bucket_below_infinity() -> None:
    metrics = Metrics(timeout_s=30.0)
    metrics.latency.labels("/v1/answer", "POST", "200").observe(25.0)
    text = generate_latest(metrics.registry).decode()
    line = 'request_duration_seconds_bucket{endpoint="/v1/answer",le="30.0",method="POST",status="200"} 1.0'
    assert line in text
    assert 'le="20.0",method="POST",status="200"} 0.0' in text  # and not in the one below: 25 s is resolved
