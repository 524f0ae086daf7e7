"""The load-test gate against the real service: `docs-assistant serve` on loopback, `docs-assistant loadtest` on it.

Both run as subprocesses: importing locust monkey-patches a process with gevent, which must not happen to
the test process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import wait_ready
from .test_shutdown import server_process, wait_until

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("docs-assistant"))
QUESTIONS = REPO / "evals" / "datasets" / "qa.jsonl"
# short and slow enough for two busy cores: the tiny model answers well under a second
LOAD = {"arrival_rate": 2, "duration_s": 6, "warmup_s": 2}
GENEROUS = {"max_startup_s": 300, "p50_ms": 20000, "p95_ms": 20000, "p99_ms": 20000, "max_error_rate": 0.2}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def service(serve_project, tmp_path_factory) -> Iterator[str]:
    """`docs-assistant serve` on a free loopback port, ready; yields its base URL."""
    port = _free_port()
    env = os.environ | serve_project.env()
    log = tmp_path_factory.mktemp("loadtest-server") / "server.log"
    with server_process([CLI, "serve", "--port", str(port)], env, log):
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url), "the server to listen", within=60)
        wait_ready(url)
        yield url


def gate_file(path: Path, **gate: float) -> Path:
    path.write_text("[gate]\n" + "".join(f"{k} = {v!r}\n" for k, v in gate.items()), encoding="utf-8")
    return path


def loadtest(reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DOCS_ASSISTANT_PATHS__REPORTS_DIR": str(reports), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [CLI, "loadtest", "--questions", str(QUESTIONS), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_a_generous_gate_passes_and_reports(service, tmp_path) -> None:
    gate = gate_file(tmp_path / "staging.toml", **GENEROUS, min_rps=1.0, **LOAD)
    run = loadtest(tmp_path / "reports", "--url", service, "--gate-file", str(gate), "--env", "staging")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    out = tmp_path / "reports" / "loadtest" / "staging"
    summary = json.loads((out / "summary.json").read_text())
    m = summary["measured"]
    assert summary["passed"], summary
    assert summary["environment"] == "staging"
    assert m["requests"] >= 5  # about arrival_rate * (duration_s - warmup_s)
    assert m["failures"] == m["unfinished"] == 0
    assert m["error_rate"] == 0.0
    assert 0 < m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"] < 20000
    assert 1.0 <= m["achieved_rps"] <= 3.0
    assert m["startup_s"] is None
    assert m["service"]["readyz"]["ready"] is True
    assert 0 < m["load"]["generator_cpu_share"] < 2  # its own process time over the wall time of the run
    assert "The load generator used" in (out / "summary.md").read_text()
    assert not summary["startup_measured"]
    assert {o["name"]: o["status"] for o in summary["objectives"]}["startup_s"] == "not measured"
    assert "Startup was not measured" in (out / "summary.md").read_text()
    assert "p95_ms: measured" in output
    assert "pass" in output
    html = (out / "locust.html").read_text()
    assert "/v1/answer" in html
    stats = (out / "locust_stats.csv").read_text()
    assert "/v1/answer" in stats
    for name in ("locust_failures.csv", "locust_exceptions.csv", "locust_stats_history.csv"):
        assert (out / name).exists(), name


def test_a_gate_below_what_the_service_achieves_fails(service, tmp_path) -> None:
    gate = gate_file(tmp_path / "prod.toml", **(GENEROUS | {"p50_ms": 1, "p95_ms": 1}), min_rps=1.0, **LOAD)
    run = loadtest(tmp_path / "reports", "--url", service, "--gate-file", str(gate), "--startup-s", "12.5")
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "p95_ms" in output
    assert "gate failed" in output
    summary = json.loads((tmp_path / "reports" / "loadtest" / "summary.json").read_text())
    assert not summary["passed"]
    assert "p95_ms" in summary["failed"]
    assert "startup_s" not in summary["failed"]
    assert summary["measured"]["startup_s"] == 12.5
    assert "p95_ms" in (tmp_path / "reports" / "loadtest" / "summary.md").read_text()


def test_errors_count_when_nothing_listens(tmp_path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    run = loadtest(tmp_path / "reports", "--url", url, *_options(GENEROUS | {"min_rps": 1.0} | LOAD))
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    summary = json.loads((tmp_path / "reports" / "loadtest" / "summary.json").read_text())
    assert summary["measured"]["error_rate"] == 1.0
    assert summary["measured"]["requests"] > 0
    assert "error_rate" in summary["failed"]
    assert "error_rate" in output


@pytest.mark.parametrize(
    ("gate", "named"),
    [
        (GENEROUS | {"min_rps": 1.0, "latency_ms": 5} | LOAD, "field 'gate.latency_ms': unknown field"),
        (GENEROUS | {"min_rps": 1.0, "p95_ms": 30000} | LOAD, "percentiles out of order"),
        (GENEROUS | {"min_rps": 1.0, "max_error_rate": 1.5} | LOAD, "field 'gate.max_error_rate'"),
    ],
)
def test_a_bad_gate_file_exits_2_naming_the_file_and_field(tmp_path, gate, named) -> None:
    path = gate_file(tmp_path / "dev.toml", **gate)
    run = loadtest(tmp_path / "reports", "--url", "http://127.0.0.1:9", "--gate-file", str(path))
    assert run.returncode == 2, run.stdout + run.stderr
    error = " ".join(run.stderr.split())  # rich wraps long lines
    assert str(path) in error
    assert named in error
    assert not (tmp_path / "reports").exists()  # refused before any load was sent


def _options(gate: dict[str, float]) -> list[str]:
    return [arg for key, value in gate.items() for arg in (f"--{key.replace('_', '-')}", str(value))]
