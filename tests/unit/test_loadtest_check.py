"""The load-test gate's verdict and inputs, without locust (which would monkey-patch the test process)."""

from __future__ import annotations

import sys

import pytest

from docs_assistant.errors import ConfigError, DataError
from docs_assistant.loadtest.check import check, markdown_of, objectives, summary_of
from docs_assistant.loadtest.gate import Gate
from docs_assistant.loadtest.inputs import load_gate, load_questions
from docs_assistant.loadtest.results import Measured, Sample, measure, percentile

GATE = Gate(
    max_startup_s=60, p50_ms=100, p95_ms=200, p99_ms=400, max_error_rate=0.01, min_rps=1.5, arrival_rate=2, duration_s=8
)


def measured(**changes) -> Measured:
    values = {
        "requests": 100,
        "failures": 0,
        "unfinished": 0,
        "error_rate": 0.0,
        "p50_ms": 50.0,
        "p95_ms": 150.0,
        "p99_ms": 300.0,
        "achieved_rps": 2.0,
        "measured_s": 50.0,
    }
    return Measured(**(values | changes))


def test_locust_is_not_imported_by_the_gate_modules() -> None:
    assert "locust" not in sys.modules  # this module imported check, inputs, results and gate above


def test_a_service_within_every_objective_passes() -> None:
    assert check(GATE, measured()) == []


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"p50_ms": 101.0}, "p50_ms"),
        ({"p95_ms": 201.0}, "p95_ms"),
        ({"p99_ms": 400.5}, "p99_ms"),
        ({"error_rate": 0.02}, "error_rate"),
        ({"achieved_rps": 1.4}, "rps"),
        ({"startup_s": 61.0}, "startup_s"),
    ],
)
def test_each_breached_objective_is_named_with_measured_and_allowed(change, name) -> None:
    [violation] = check(GATE, measured(**change))
    assert violation.name == name
    assert violation.measured == next(iter(change.values()))
    assert violation.allowed in (100, 200, 400, 0.01, 1.5, 60)
    assert violation.describe().endswith("FAIL")


def test_bounds_are_inclusive() -> None:
    assert check(GATE, measured(p50_ms=100.0, p95_ms=200.0, p99_ms=400.0, achieved_rps=1.5, startup_s=60.0)) == []


def test_startup_not_measured_is_reported_but_does_not_fail() -> None:
    [startup] = [o for o in objectives(GATE, measured()) if o.name == "startup_s"]
    assert startup.passed is None
    assert startup.status == "not measured"
    summary = summary_of(GATE, measured(), url="http://127.0.0.1:1", environment="dev")
    assert summary["passed"]
    assert not summary["startup_measured"]
    assert "Startup was not measured" in markdown_of(summary)


def test_nothing_measured_fails_the_latency_objectives() -> None:
    failed = {v.name for v in check(GATE, measured(p50_ms=None, p95_ms=None, p99_ms=None, error_rate=1.0))}
    assert failed == {"p50_ms", "p95_ms", "p99_ms", "error_rate"}


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7.0
    assert percentile([3, 1, 2], 0) == 1


def test_measure_skips_warm_up_and_counts_unfinished_as_failures() -> None:
    samples = [Sample(0.5, 900.0, True)]  # completed during warm-up: not measured
    samples += [Sample(1.0 + i / 10, 10.0 * (i + 1), i != 0) for i in range(10)]
    m = measure(samples, window_start=1.0, window_end=3.0, unfinished=2)
    assert m.requests == 10
    assert m.failures == 1
    assert m.error_rate == pytest.approx(3 / 12)
    assert m.p50_ms == 60.0  # over the 9 successes, 20..100 ms: the 5th
    assert m.p99_ms == 100.0
    assert m.measured_s == 2.0
    assert m.achieved_rps == pytest.approx(5.0)


def test_measure_of_nothing() -> None:
    m = measure([], window_start=1.0, window_end=2.0)
    assert (m.requests, m.error_rate, m.p95_ms, m.achieved_rps) == (0, None, None, 0.0)
    assert "error_rate" in {v.name for v in check(GATE, m)}


def test_gate_file_errors_name_the_file_and_field(tmp_path) -> None:
    path = tmp_path / "staging.toml"
    path.write_text(
        "[gate]\nmax_startup_s = 60\np50_ms = 100\np95_ms = 200\np99_ms = 400\n"
        "max_error_rate = 0.01\nmin_rps = 1\narrival_rate = 2\nduration_s = 8\nlatency = 3\n"
    )
    with pytest.raises(ConfigError) as info:
        load_gate(path)
    assert str(path) in str(info.value)
    assert "field 'gate.latency': unknown field" in str(info.value)

    with pytest.raises(ConfigError, match="the command-line options: option --p95-ms"):
        load_gate(None, dict(GATE.model_dump(), p95_ms=-1))
    path.write_text(path.read_text().replace("latency = 3\n", ""))
    assert load_gate(path).p95_ms == 200
    assert load_gate(path, {"p95_ms": 300, "arrival_rate": None}).p95_ms == 300
    with pytest.raises(ConfigError, match="percentiles out of order"):
        load_gate(path, {"p95_ms": 50})


def test_gate_file_without_a_gate_table(tmp_path) -> None:
    path = tmp_path / "dev.toml"
    path.write_text("[service]\nreplicas = 1\n")
    with pytest.raises(ConfigError, match=r"no \[gate\] table"):
        load_gate(path)
    path.write_text("[gate\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_gate(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_gate(tmp_path / "missing.toml")


def test_questions_are_read_and_bad_lines_named(tmp_path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "How?"}\n\n{"question": "Why?"}\n')
    assert load_questions(path) == ["How?", "Why?"]
    path.write_text('{"question": "How?"}\n{"answer": "no question"}\n')
    with pytest.raises(DataError, match=r"qa.jsonl:2: field 'question'"):
        load_questions(path)
    path.write_text("")
    with pytest.raises(DataError, match="no questions"):
        load_questions(path)
