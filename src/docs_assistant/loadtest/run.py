"""The load test itself: locust in this process, headless, against any base URL.

Importing this module imports locust, which monkey-patches the whole process with gevent: only the
`docs-assistant loadtest` command imports it, lazily, and tests run that command in a subprocess.

Arrivals are paced open-loop-ish: `users` users each ask once per `users / arrival_rate` seconds,
as locust's `constant_throughput(arrival_rate / users)` would, but on a fixed schedule with user i's
slots offset by `i / arrival_rate`, so requests arrive evenly spread rather than `users` at once
(constant_throughput times each user from its own spawn, which would bunch them). With
`users = ceil(arrival_rate * p99) + 1`, one user's interval exceeds the gate's p99 latency, so a
service that meets its gate is asked at the requested rate; a slower one makes users fall behind (a
late user asks again at once and skips its missed slots), and the achieved rate shows it.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, task
from locust.env import Environment
from locust.html import get_html_report
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsCSVFileWriter, stats_history

from docs_assistant.io import atomic_write_text
from docs_assistant.loadtest.gate import Gate
from docs_assistant.loadtest.results import Measured, Sample, measure

ENDPOINT = "/v1/answer"
MAX_SPAWN_RATE = 100  # locust warns above it; the warm-up covers a slower spawn
CSV_PREFIX = "locust"  # locust_stats.csv, locust_stats_history.csv, locust_failures.csv, locust_exceptions.csv
HTML_REPORT = "locust.html"


def users_for(gate: Gate) -> int:
    """Enough users that one user's pacing interval (users / arrival_rate) exceeds the gate's p99."""
    return max(1, math.ceil(gate.arrival_rate * gate.p99_ms / 1000)) + 1


def request_timeout_s(gate: Gate) -> float:
    """How long one request may take before it counts as failed; also how long the end waits for stragglers."""
    return max(10.0, 4 * gate.p99_ms / 1000)


def run_load_test(
    base_url: str,
    gate: Gate,
    questions: list[str],
    out_dir: Path,
    *,
    api_key: str | None = None,
    startup_s: float | None = None,
) -> Measured:
    """Run the gate's load against `base_url`; write locust's CSV files and HTML report into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    users = users_for(gate)
    timeout = request_timeout_s(gate)
    samples: list[Sample] = []
    inflight: dict[int, float] = {}  # request number -> when it was sent (time.time())
    user_class = _user_class(gate, users, questions, api_key, inflight, timeout)

    env = Environment(user_classes=[user_class], host=base_url.rstrip("/"), stop_timeout=timeout)
    runner = env.create_local_runner()

    def record(name: str, response_time: float, exception: Any, **_: Any) -> None:
        if name == ENDPOINT:
            samples.append(Sample(completed_at=time.time(), latency_ms=response_time, ok=exception is None))

    env.events.request.add_listener(record)
    csv_writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(out_dir / CSV_PREFIX), full_history=True)
    background = [gevent.spawn(stats_history, runner), gevent.spawn(csv_writer.stats_writer)]
    cpu_start, wall_start = time.process_time(), time.monotonic()
    try:
        user_class.origin = time.monotonic()
        runner.start(users, spawn_rate=min(users, MAX_SPAWN_RATE))
        gevent.sleep(gate.warmup_s)
        runner.stats.reset_all()  # what locust's CSV and HTML show starts here too
        window_start = time.time()
        gevent.sleep(gate.duration_s - gate.warmup_s)
        window_end = time.time()
        runner.stop()  # no new requests; the ones in flight get `timeout` seconds to finish
        # A user whose slot comes up while the stop is under way may still send, and locust then kills it
        # mid-request: sent after the window closed, that one is the tester's, not a service failure.
        unfinished = sum(1 for sent in inflight.values() if sent < window_end)
        cpu_s, wall_s = time.process_time() - cpu_start, time.monotonic() - wall_start
        atomic_write_text(out_dir / HTML_REPORT, get_html_report(env, show_download_link=False))
    finally:
        gevent.killall(background)
        csv_writer.close_files()
        runner.quit()
    _write_final_csv(env, out_dir)
    load = {
        "users": users,
        "arrival_rate": gate.arrival_rate,
        "interval_per_user_s": users / gate.arrival_rate,
        "duration_s": gate.duration_s,
        "warmup_s": gate.warmup_s,
        "request_timeout_s": timeout,
        "questions": len(questions),
        "endpoint": ENDPOINT,
        # the load generator's own CPU, so a failed gate can be told from a saturated tester (one core = 1.0)
        "generator_cpu_s": round(cpu_s, 3),
        "generator_cpu_share": round(cpu_s / wall_s, 4) if wall_s > 0 else None,
    }
    return measure(
        samples,
        window_start=window_start,
        window_end=window_end,
        unfinished=unfinished,
        startup_s=startup_s,
        load=load,
        service=service_readiness(base_url),
    )


def _user_class(
    gate: Gate, users: int, questions: list[str], api_key: str | None, inflight: dict[int, float], timeout: float
) -> type[FastHttpUser]:
    interval = users / gate.arrival_rate
    next_question = itertools.cycle(questions).__next__  # round-robin over the eval set, shared by all users
    slots, numbers = itertools.count(), itertools.count()
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}

    class AnswerUser(FastHttpUser):
        """Asks one eval question per pacing slot."""

        origin = 0.0  # set when the test starts: user i's first slot is origin + i / arrival_rate
        network_timeout = timeout
        connection_timeout = timeout

        def on_start(self) -> None:
            self.next_at = self.origin + next(slots) / gate.arrival_rate
            self.wait()  # until the first slot; a wait (not a sleep) lets the end of the test stop the user at once

        def wait_time(self) -> float:
            return max(0.0, self.next_at - time.monotonic())

        @task
        def answer(self) -> None:
            number, slot = next(numbers), self.next_at
            inflight[number] = time.time()
            try:
                with self.client.post(
                    ENDPOINT,
                    json={"question": next_question()},
                    headers=headers | {"x-request-id": f"loadtest-{number}"},
                    name=ENDPOINT,
                    catch_response=True,
                ) as response:
                    inflight.pop(number, None)  # not reached when the end of the test kills the request
                    if not response.status_code:
                        response.failure(f"no response: {response.error!r}")
                    elif not 200 <= response.status_code < 300:
                        response.failure(f"HTTP {response.status_code}")
            finally:  # late: ask again at once, skipping the missed slots (no burst to catch up)
                self.next_at = max(slot + interval, time.monotonic())

    return AnswerUser


def _write_final_csv(env: Environment, out_dir: Path) -> None:
    """The stats, failures and exceptions as they were at the end (the live writer refreshes them once a second)."""
    writer = StatsCSV(env, PERCENTILES_TO_REPORT)
    for suffix, write in (
        ("stats", writer.requests_csv),
        ("failures", writer.failures_csv),
        ("exceptions", writer.exceptions_csv),
    ):
        buffer = io.StringIO()
        write(csv.writer(buffer))
        atomic_write_text(out_dir / f"{CSV_PREFIX}_{suffix}.csv", buffer.getvalue())


def service_readiness(base_url: str) -> dict[str, Any]:
    """The service's own account of its start-up (`/readyz`: phase durations in ms), or why there is none."""
    url = base_url.rstrip("/") + "/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the URL the user asked to test
            return {"readyz": json.loads(response.read())}
    except urllib.error.HTTPError as exc:
        return {"readyz_status": exc.code}
    except (OSError, ValueError) as exc:
        return {"readyz_error": str(exc)}
