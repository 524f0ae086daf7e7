"""The load-test gate's own overhead: does locust deliver the requested arrival rate, at what CPU cost?

A gate failure must mean the service, not the tester. So `docs-assistant loadtest` (as a process, as the
deploy stage runs it) is pointed at a floor service that answers `/v1/answer` at once (a stdlib threaded
HTTP server in its own process, a canned JSON answer): whatever rate is missed there is the generator's.
Arrival rates: the committed environments' rate (2/s) and 10x and 25x above it, the order alternating per
round. Per run: achieved rate / requested rate, the p50 latency the generator observed against the floor,
and the generator's CPU share (its own process time over the run's wall time, which the command reports
in every summary).

Targets: achieved >= 0.95 of requested at every rate (medians over rounds), and the generator uses at most
25% of one core even at the highest rate (25x the environments'), so on two cores the service keeps most
of the machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._project import clean_env
from benchmarks._stats import BenchResult, summarize
from benchmarks.bench_pipeline_rerun import console_script

NAME = "loadtest"
DEFAULT_REPEAT = 3  # rounds over the rates
ENV_RATE = 2.0  # deploy/environments/*.toml: arrival_rate
RATES = (ENV_RATE, 20.0, 50.0)
DURATION_S, WARMUP_S = 12.0, 2.0
TARGET_ACHIEVED = 0.95
TARGET_CPU_SHARE = 0.25
REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "evals" / "datasets" / "qa.jsonl"

FLOOR = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = json.dumps({"id": "ans-floor", "answer": "ok"}).encode()
READY = json.dumps({"ready": True, "phase": "ready"}).encode()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _send(self, body):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self._send(ANSWER)
    def do_GET(self):
        self._send(READY)
    def log_message(self, *args):
        pass

ThreadingHTTPServer.request_queue_size = 1024  # every user connects at the start; socketserver's default is 5
ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def _gate_file(directory: Path) -> Path:
    path = directory / "gate.toml"
    path.write_text(
        "[gate]\nmax_startup_s = 60\np50_ms = 1000\np95_ms = 2000\np99_ms = 4000\nmax_error_rate = 0.01\n"
        f"min_rps = 1\narrival_rate = {ENV_RATE}\nduration_s = {DURATION_S}\nwarmup_s = {WARMUP_S}\n",
        encoding="utf-8",
    )
    return path


def _one(url: str, rate: float, gate: Path, reports: Path, env: dict[str, str]) -> dict[str, Any]:
    args = [console_script(), "loadtest", "--url", url, "--gate-file", str(gate), "--questions", str(QUESTIONS)]
    args += ["--arrival-rate", f"{rate:g}", "--min-rps", "1"]
    run_env = env | {"DOCS_ASSISTANT_PATHS__REPORTS_DIR": str(reports)}
    done = subprocess.run(args, env=run_env, capture_output=True, text=True, timeout=DURATION_S + 120, check=False)
    summary_path = reports / "loadtest" / "summary.json"
    if done.returncode != 0 or not summary_path.is_file():
        raise RuntimeError(f"loadtest at {rate:g}/s exited {done.returncode}: {done.stderr[-2000:]}")
    measured = json.loads(summary_path.read_text(encoding="utf-8"))["measured"]
    return {
        "rate": rate,
        "achieved_rps": measured["achieved_rps"],
        "achieved_ratio": measured["achieved_rps"] / rate,
        "p50_ms": measured["p50_ms"],
        "errors": measured["failures"] + measured["unfinished"],
        "requests": measured["requests"],
        "cpu_share": measured["load"]["generator_cpu_share"],
        "users": measured["load"]["users"],
    }


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    env = clean_env()
    runs: dict[float, list[dict[str, Any]]] = {rate: [] for rate in RATES}
    with tempfile.TemporaryDirectory(prefix="docs-assistant-bench-loadtest-") as tmp:
        root = Path(tmp)
        floor = subprocess.Popen([sys.executable, "-c", FLOOR], stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert floor.stdout is not None
            url = f"http://127.0.0.1:{int(floor.stdout.readline())}"
            _wait_listening(url)
            gate = _gate_file(root)
            for i in range(repeat):
                for rate in RATES if i % 2 == 0 else tuple(reversed(RATES)):
                    runs[rate].append(_one(url, rate, gate, root / f"reports-{i}-{rate:g}", env))
        finally:
            floor.terminate()
            floor.wait(timeout=10)

    per_rate = {
        f"{rate:g}": {
            "achieved_ratio": summarize([r["achieved_ratio"] for r in rs]),
            "cpu_share": summarize([r["cpu_share"] for r in rs]),
            "p50_ms": summarize([r["p50_ms"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
            "users": rs[0]["users"],
            "rounds": rs,
        }
        for rate, rs in runs.items()
    }
    worst = min(v["achieved_ratio"]["p50"] for v in per_rate.values())
    top_cpu = per_rate[f"{max(RATES):g}"]["cpu_share"]["p50"]
    errors = sum(v["errors"] for v in per_rate.values())
    met = worst >= TARGET_ACHIEVED and top_cpu <= TARGET_CPU_SHARE and errors == 0
    detail = "; ".join(
        f"{k}/s: {v['achieved_ratio']['p50']:.3f}x of requested, CPU {v['cpu_share']['p50']:.0%} of a core "
        f"({v['cpu_share']['min']:.0%}-{v['cpu_share']['max']:.0%})"
        for k, v in per_rate.items()
    )
    return BenchResult(
        name=NAME,
        description="docs-assistant loadtest against a floor service that answers at once: achieved vs "
        "requested arrival rate, and the generator's CPU share",
        repeat=repeat,
        target=f"achieved >= {TARGET_ACHIEVED}x requested at every rate; CPU <= {TARGET_CPU_SHARE:.0%} of a "
        f"core at {max(RATES):g}/s; no errors",
        target_metric="achieved_ratio p50, worst rate",
        measured=round(worst, 4),
        met=met,
        headline=detail + (f"; {errors} errors" if errors else ""),
        params={
            "rates": list(RATES),
            "duration_s": DURATION_S,
            "warmup_s": WARMUP_S,
            "floor": "stdlib ThreadingHTTPServer in its own process, canned JSON, HTTP/1.1 keep-alive",
            "cpus": os.cpu_count(),
        },
        results=per_rate,
    )


def _wait_listening(url: str, within_s: float = 30) -> None:
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the floor service at {url} did not listen within {within_s} s")
