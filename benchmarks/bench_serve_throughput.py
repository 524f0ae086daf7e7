"""Sustained `POST /v1/answer` throughput at 1, 4 and 16 concurrent clients, and the share of 429s past the cap.

One `docs-assistant serve` process on loopback with a small admission cap (`max_concurrency` 2 generating,
`max_queue` 4 waiting: 6 admitted at most), answers pinned short and greedy (`_server.ANSWER_SETTINGS`).
Each level runs closed-loop clients for a fixed duration: every client sends its next eval question as
soon as its previous answer arrives; on 429 it waits the `Retry-After` the server sent (1 s by default,
never past the end of the level), as a well-behaved client does, then sends again. Requests/s counts
200 answers only, over the time from the level's start until its last response. 1 and 4 clients stay
within the cap (no 429 expected); 16 exceed it, so some are refused at once.

The peer is the same server at one client, measured in the same run (levels alternate order per round):
on two cores a generation already keeps the CPU busy, so more clients cannot add much; the target is
that 4 clients get at least the throughput of one (admission and queueing cost nothing that shows),
with no 5xx and no connection errors at any level.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx

from benchmarks._project import scratch_project
from benchmarks._server import ANSWER_SETTINGS, client, prepare, process_env, serve
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "serve_throughput"
DEFAULT_REPEAT = 3  # rounds over the three levels, in alternating order
LEVELS = (1, 4, 16)
DURATION_S = 6.0  # per level and round
MAX_CONCURRENCY, MAX_QUEUE = 2, 4
TARGET_RATIO = 1.0  # req/s at 4 clients over req/s at 1 client
CAP = {
    "DOCS_ASSISTANT_SERVE__MAX_CONCURRENCY": str(MAX_CONCURRENCY),
    "DOCS_ASSISTANT_SERVE__MAX_QUEUE": str(MAX_QUEUE),
}


async def _level(url: str, clients: int, duration_s: float, questions: list[str]) -> dict[str, Any]:
    """`clients` closed-loop clients for `duration_s`; counts, latencies (ms) of 200s, elapsed seconds."""
    ok_ms: list[float] = []
    rejected_ms: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, trust_env=False, limits=limits) as http:
        start = time.perf_counter()
        deadline = start + duration_s

        async def one_client(i: int) -> None:
            k = i
            while time.perf_counter() < deadline:
                question = questions[k % len(questions)]
                k += clients
                t0 = time.perf_counter()
                try:
                    response = await http.post("/v1/answer", json={"question": question})
                except httpx.TransportError as exc:
                    errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.1)
                    continue
                ms = (time.perf_counter() - t0) * 1000
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    ok_ms.append(ms)
                elif response.status_code == 429:
                    rejected_ms.append(ms)
                    wait = float(response.headers.get("retry-after", "1"))
                    await asyncio.sleep(max(0.0, min(wait, deadline - time.perf_counter())))

        await asyncio.gather(*(one_client(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    attempts = sum(statuses.values()) + sum(errors.values())
    return {
        "clients": clients,
        "elapsed_s": round(elapsed, 3),
        "ok": len(ok_ms),
        "attempts": attempts,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "connection_errors": dict(errors),
        "req_s": len(ok_ms) / elapsed,
        "ok_ms": ok_ms,
        "rejected_ms": rejected_ms,
    }


def _per_level(runs: list[dict[str, Any]]) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in runs:
        statuses.update(r["statuses"])
        errors.update(r["connection_errors"])
    attempts = sum(r["attempts"] for r in runs)
    ok_ms = [ms for r in runs for ms in r["ok_ms"]]
    rejected_ms = [ms for r in runs for ms in r["rejected_ms"]]
    return {
        "req_s": summarize([r["req_s"] for r in runs]),
        "latency_ms": summarize(ok_ms) if ok_ms else None,
        "rejected_latency_ms": summarize(rejected_ms) if rejected_ms else None,
        "attempts": attempts,
        "ok": len(ok_ms),
        "statuses": dict(sorted(statuses.items())),
        "status_5xx": sum(v for k, v in statuses.items() if k.startswith("5")),
        "connection_errors": sum(errors.values()),
        "connection_error_kinds": dict(errors),
        "share_429": round(statuses.get("429", 0) / attempts, 4) if attempts else 0.0,
        "rounds": [{k: v for k, v in r.items() if k not in ("ok_ms", "rejected_ms")} for r in runs],
    }


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    from docs_assistant.config import load_settings
    from docs_assistant.data.corpus import load_corpus

    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in LEVELS}
    with scratch_project(NAME) as root:
        settings = load_settings()
        t0 = time.perf_counter()
        prepare(settings)  # loads the embedder itself only when no serve benchmark prepared a project yet
        questions = [q.question for q in load_corpus(settings.paths.data_dir).qa_split("eval")]
        prepare_s = time.perf_counter() - t0
        with serve(root, process_env(ANSWER_SETTINGS | CAP), name="throughput") as server:
            server_ready_s = server.ready_s or 0.0
            with client(server.url) as http:  # untimed warm-up: a few answers, one at a time
                for q in questions[:3]:
                    http.post("/v1/answer", json={"question": q}).raise_for_status()
            for rnd in range(repeat):
                for n in LEVELS if rnd % 2 == 0 else tuple(reversed(LEVELS)):
                    runs[n].append(asyncio.run(_level(server.url, n, DURATION_S, questions)))

    levels = {str(n): _per_level(r) for n, r in runs.items()}
    one, four, top = levels["1"], levels["4"], levels[str(LEVELS[-1])]
    r4 = ratio(four["req_s"]["p50"], one["req_s"]["p50"])
    r16 = ratio(top["req_s"]["p50"], one["req_s"]["p50"])
    bad_5xx = sum(v["status_5xx"] for v in levels.values())
    bad_conn = sum(v["connection_errors"] for v in levels.values())
    met = r4 >= TARGET_RATIO and bad_5xx == 0 and bad_conn == 0
    per_level = "; ".join(
        f"{n}: {v['req_s']['p50']:.2f} req/s, p50 {v['latency_ms']['p50'] if v['latency_ms'] else float('nan'):.0f}"
        f"/p95 {v['latency_ms']['p95'] if v['latency_ms'] else float('nan'):.0f} ms, 429 {v['share_429']:.0%}"
        for n, v in levels.items()
    )
    return BenchResult(
        name=NAME,
        description="POST /v1/answer req/s at 1, 4 and 16 closed-loop clients on one loopback server "
        f"(max_concurrency {MAX_CONCURRENCY}, max_queue {MAX_QUEUE}), 429 share past the cap",
        repeat=repeat,
        target=f">= {TARGET_RATIO}x at 4 clients vs 1; no 5xx, no connection errors",
        target_metric="ratio_4_vs_1 (req/s p50 at 4 clients / at 1 client), and zero 5xx and connection errors",
        measured=r4,
        met=met,
        headline=f"{per_level}; 4 vs 1: {r4:.2f}x; 5xx {bad_5xx}, connection errors {bad_conn}",
        params={
            "levels": list(LEVELS),
            "duration_s": DURATION_S,
            "rounds": repeat,
            "max_concurrency": MAX_CONCURRENCY,
            "max_queue": MAX_QUEUE,
            "answer_settings": ANSWER_SETTINGS,
            "on_429": "wait Retry-After (capped at the level's end), then send again",
            "req_s": "200 answers / seconds from the level's start to its last response",
        },
        results={
            "levels": levels,
            "ratio_4_vs_1": r4,
            f"ratio_{LEVELS[-1]}_vs_1": r16,
            "status_5xx": bad_5xx,
            "connection_errors": bad_conn,
            "setup_s": {"prepare": round(prepare_s, 3), "server_ready": round(server_ready_s, 3)},
        },
    )
