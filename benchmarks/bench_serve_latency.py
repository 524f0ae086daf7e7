"""`POST /v1/answer` latency through a real server on loopback against `RagPipeline.answer` in-process.

Both sides answer the eval questions with the same settings (the defaults, plus greedy decoding and a
short answer pinned by environment for both: `_server.ANSWER_SETTINGS`), the same index and the same
tiny model. One question at a time, interleaved: each question goes to both sides back to back, and
which side goes first flips per question and per round, so drift and noise hit both alike. The server
is a `docs-assistant serve` process; the client is httpx with a keep-alive connection. What remains in
the ratio is what the service adds: HTTP, FastAPI routing and validation, middleware (request id, metrics,
access log), the hop to a generation worker thread and the response's serialization.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

from benchmarks._project import scratch_project
from benchmarks._server import ANSWER_SETTINGS, client, prepare, process_env, serve
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "serve_latency"
DEFAULT_REPEAT = 2  # rounds over all eval questions (each ~40 s on 2 cores)
WARMUP_QUESTIONS = 3  # per side, untimed
TARGET_OVERHEAD = 0.10


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    from docs_assistant.config import load_settings
    from docs_assistant.data.corpus import load_corpus
    from docs_assistant.rag.embeddings import load_embedder
    from docs_assistant.rag.pipeline import RagPipeline

    samples: dict[str, list[float]] = {"server": [], "in_process": []}
    inside_server: list[float] = []  # the pipeline's own total_ms, as the server reports it
    outside_pipeline: list[float] = []  # client latency minus that: what the service adds around the pipeline
    paired_delta: list[float] = []
    phases: dict[str, dict[str, list[float]]] = {"server": {}, "in_process": {}}  # the pipeline's own timings
    tokens: dict[str, list[int]] = {"server": [], "in_process": []}
    identical = 0
    with scratch_project(NAME) as root:
        os.environ.update(ANSWER_SETTINGS)  # this process's settings; scratch_project restores the environment
        settings = load_settings()
        t0 = time.perf_counter()
        embedder = load_embedder(settings.embedding)
        prepare(settings, embedder)
        prepare_s = time.perf_counter() - t0
        questions = [q.question for q in load_corpus(settings.paths.data_dir).qa_split("eval")]
        pipeline = RagPipeline(settings, embedder=embedder)
        # the same torch thread count as the service sets for itself, else the peer measures a different machine
        import torch

        from docs_assistant.serve.startup import generation_threads

        torch.set_num_threads(generation_threads(settings.serve.torch_threads, settings.serve.max_concurrency))

        with serve(root, process_env(ANSWER_SETTINGS), name="latency") as server, client(server.url) as http:

            def remote(question: str) -> dict[str, Any]:
                response = http.post("/v1/answer", json={"question": question})
                if response.status_code != 200:
                    raise RuntimeError(f"/v1/answer answered {response.status_code}: {response.text[:500]}")
                return response.json()

            server_ready_s = server.ready_s
            for q in questions[:WARMUP_QUESTIONS]:
                remote(q)
                pipeline.answer(q)

            for rnd in range(repeat):
                gc.collect()
                for j, q in enumerate(questions):
                    got: dict[str, Any] = {}
                    timing: dict[str, float] = {}
                    for side in ("server", "in_process") if (rnd + j) % 2 == 0 else ("in_process", "server"):
                        t0 = time.perf_counter()
                        got[side] = remote(q) if side == "server" else pipeline.answer(q)
                        timing[side] = (time.perf_counter() - t0) * 1000
                    for side, ms in timing.items():
                        samples[side].append(ms)
                    served, local = got["server"], got["in_process"]
                    inside_server.append(served["timings_ms"]["total_ms"])
                    outside_pipeline.append(timing["server"] - served["timings_ms"]["total_ms"])
                    paired_delta.append(timing["server"] - timing["in_process"])
                    identical += served["answer"] == local.text
                    for side, timings, completion in (
                        ("server", served["timings_ms"], served["tokens"]["completion"]),
                        ("in_process", local.timings_ms, local.tokens["completion"]),
                    ):
                        tokens[side].append(completion)
                        for phase, ms in timings.items():
                            phases[side].setdefault(phase, []).append(ms)

    srv, loc = summarize(samples["server"]), summarize(samples["in_process"])
    r50, r95 = ratio(srv["p50"], loc["p50"]), ratio(srv["p95"], loc["p95"])
    overhead = round(r50 - 1, 4)
    outside = summarize(outside_pipeline)
    n = len(samples["server"])
    return BenchResult(
        name=NAME,
        description="POST /v1/answer on a loopback server (httpx, one at a time) vs RagPipeline.answer "
        "in-process, same questions and settings, interleaved",
        repeat=repeat,
        target=f"<= {TARGET_OVERHEAD:.0%} overhead at p50",
        target_metric="overhead_p50 (server p50 / in-process p50 - 1)",
        measured=overhead,
        met=overhead <= TARGET_OVERHEAD,
        headline=(
            f"p50 {srv['p50']:.1f} vs {loc['p50']:.1f} ms ({overhead:+.1%}); p95 {srv['p95']:.1f} vs "
            f"{loc['p95']:.1f} ms ({r95:.2f}x); outside the pipeline p50 {outside['p50']:.1f} ms; "
            f"{identical}/{n} answers identical"
        ),
        params={
            "questions": len(questions),
            "rounds": repeat,
            "warmup_questions": WARMUP_QUESTIONS,
            "answer_settings": ANSWER_SETTINGS,
            "max_concurrency": settings.serve.max_concurrency,
            "client": "httpx.Client, keep-alive, one request at a time",
        },
        results={
            "server_ms": srv,
            "in_process_ms": loc,
            "ratio_p50": r50,
            "ratio_p95": r95,
            "overhead_p50": overhead,
            "paired_delta_ms": summarize(paired_delta),
            "server_pipeline_total_ms": summarize(inside_server),
            "server_outside_pipeline_ms": outside,
            "pipeline_phases_ms": {side: {k: summarize(v) for k, v in p.items()} for side, p in phases.items()},
            "completion_tokens": {side: summarize(v) for side, v in tokens.items()},
            "identical_answers": identical,
            "setup_s": {"prepare": round(prepare_s, 3), "server_ready": round(server_ready_s or 0.0, 3)},
            "answers": n,
        },
    )
