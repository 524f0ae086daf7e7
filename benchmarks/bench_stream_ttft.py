"""Streamed time to first token: `POST /v1/chat/completions` with `stream: true` on a real server against
the first token the model generates in-process (issue 19), for an English and a Chinese question.

In-process, `RagPipeline.answer` runs with an `on_text` callback, and the LLM's own `on_text` (what the
transformers streamer hands over, before the guardrails) is timed by a thin wrapper around the real model:
from the call of `answer` (question screen, retrieval, prompt fitting, then `generate`) to the model's first
piece. The pipeline's own screened first piece and the time from `generate`'s call are recorded beside it.
The server is a `docs-assistant serve` process on loopback; the client (httpx, keep-alive) times from
sending the request to the first SSE event whose delta carries content. Both sides use the same settings
(greedy, `MAX_NEW_TOKENS` new tokens, pinned by environment), index, model and torch thread count; each
round asks each question on both sides back to back, the side that goes first alternating, so drift hits
both alike. The ratio is taken per round and question (server / in-process first token).

What the first token is depends on what the model writes: the tiny random model writes ASCII bytes
whatever the question, so the Chinese question measures a Chinese prompt, not a Chinese answer (its
output is recorded in the result). The streamer holds symbols until a space and the guardrails hold a
trailing run of letters and digits (it may still become a key or an e-mail address), so for this model the
first content chunk can come much later than the first generated token; the result keeps the model's
first piece and the first screened piece, so a missed target says which of the two held the text.
"""

from __future__ import annotations

import gc
import json
import os
import time
from typing import Any

from benchmarks._project import scratch_project
from benchmarks._server import client, prepare, process_env, serve
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "stream_ttft"
DEFAULT_REPEAT = 20  # rounds; each asks both questions on both sides (~1-2 s a round on 2 cores)
WARMUP = 2  # rounds per side, untimed
TARGET_RATIO = 1.2
MAX_NEW_TOKENS = 16
QUESTIONS = {
    "english": "How do I rotate the webhook signing secret?",
    "cjk": "如何轮换网络钩子的签名密钥？",
}
SETTINGS = {
    "DOCS_ASSISTANT_MODEL__MAX_NEW_TOKENS": str(MAX_NEW_TOKENS),
    "DOCS_ASSISTANT_MODEL__TEMPERATURE": "0.0",
}


class FirstToken:
    """The real LLM; records when `generate` was called and when its first piece of text came out."""

    def __init__(self, llm: Any):
        self.llm, self.info = llm, llm.info
        self.called = self.first = 0.0
        self.first_piece, self.pieces = "", 0

    def __getattr__(self, name: str) -> Any:  # input_budget and the like, for prompt fitting
        return getattr(self.llm, name)

    def generate(self, prompt: str, *, max_new_tokens: int | None = None, on_text: Any = None) -> Any:
        self.called, self.first, self.first_piece, self.pieces = time.perf_counter(), 0.0, "", 0

        def relay(piece: str) -> None:
            self.pieces += 1
            if not self.first:
                self.first, self.first_piece = time.perf_counter(), piece
            on_text(piece)

        return self.llm.generate(prompt, max_new_tokens=max_new_tokens, on_text=relay if on_text else None)


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    from docs_assistant.config import load_settings
    from docs_assistant.rag.embeddings import load_embedder
    from docs_assistant.rag.pipeline import RagPipeline

    sides = ("server", "in_process_first_token", "in_process_first_screened", "in_process_generate_to_token")
    samples: dict[str, dict[str, list[float]]] = {q: {s: [] for s in sides} for q in QUESTIONS}
    ratios: dict[str, list[float]] = {q: [] for q in QUESTIONS}
    outputs: dict[str, dict[str, str]] = {}
    with scratch_project(NAME) as root:
        os.environ.update(SETTINGS)
        settings = load_settings()
        embedder = load_embedder(settings.embedding)
        prepare(settings, embedder)
        pipeline = RagPipeline(settings, embedder=embedder)
        llm = FirstToken(pipeline.llm)
        pipeline.llm = llm
        import torch

        from docs_assistant.serve.startup import generation_threads

        torch.set_num_threads(generation_threads(settings.serve.torch_threads, settings.serve.max_concurrency))

        with serve(root, process_env(SETTINGS), name="ttft") as server, client(server.url) as http:

            def remote(question: str) -> tuple[float, str]:
                """Seconds to the first content chunk, and the whole streamed text."""
                body = {"model": "m", "messages": [{"role": "user", "content": question}], "stream": True}
                first, parts = 0.0, []
                t0 = time.perf_counter()
                with http.stream("POST", "/v1/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        raise RuntimeError(f"chat completion answered {response.status_code}: {response.read()!r}")
                    for line in response.iter_lines():
                        if not line.startswith("data: {"):
                            continue
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        content = choices[0].get("delta", {}).get("content")
                        if content:
                            first = first or time.perf_counter() - t0
                            parts.append(content)
                if not first:
                    raise RuntimeError(f"no content streamed for {question!r}")
                return first, "".join(parts)

            def local(question: str) -> dict[str, Any]:
                screened: list[float] = []

                def on_text(_piece: str) -> None:
                    screened.append(time.perf_counter())

                t0 = time.perf_counter()
                answer = pipeline.answer(question, on_text=on_text)
                return {
                    "in_process_first_token": llm.first - t0,
                    "in_process_first_screened": screened[0] - t0,
                    "in_process_generate_to_token": llm.first - llm.called,
                    "first_piece": llm.first_piece,
                    "pieces": llm.pieces,
                    "text": answer.text,
                }

            for _ in range(WARMUP):
                for q in QUESTIONS.values():
                    remote(q)
                    local(q)
            for rnd in range(repeat):
                gc.collect()
                for j, (key, q) in enumerate(QUESTIONS.items()):
                    got: dict[str, Any] = {}
                    for side in ("server", "local") if (rnd + j) % 2 == 0 else ("local", "server"):
                        got[side] = remote(q) if side == "server" else local(q)
                    server_s, streamed = got["server"]
                    mine = got["local"]
                    samples[key]["server"].append(server_s * 1000)
                    for s in sides[1:]:
                        samples[key][s].append(mine[s] * 1000)
                    ratios[key].append(ratio(server_s, mine["in_process_first_token"]))
                    outputs[key] = {
                        "server_text": streamed,
                        "in_process_text": mine["text"],
                        "model_first_piece": mine["first_piece"],
                        "model_pieces": mine["pieces"],
                    }

    medians = {key: summarize(r)["p50"] for key, r in ratios.items()}
    worst = max(medians.values())
    stats = {key: {s: summarize(v) for s, v in per.items()} for key, per in samples.items()}
    parts = []
    for key in QUESTIONS:
        r = summarize(ratios[key])
        parts.append(
            f"{key} {r['p50']:.2f}x ({r['min']:.2f}-{r['max']:.2f}; first chunk p50 "
            f"{stats[key]['server']['p50']:.0f} ms vs first token {stats[key]['in_process_first_token']['p50']:.0f} ms)"
        )
    return BenchResult(
        name=NAME,
        description="streamed chat completion: client's first content chunk from a loopback server vs the "
        "LLM's first on_text piece in-process (from RagPipeline.answer's call), English and Chinese question",
        repeat=repeat,
        target=f"<= {TARGET_RATIO}x for each question (median of per-round ratios)",
        target_metric="worst question's median of server first chunk / in-process first token",
        measured=worst,
        met=worst <= TARGET_RATIO,
        headline="; ".join(parts),
        params={
            "questions": QUESTIONS,
            "rounds": repeat,
            "warmup_rounds": WARMUP,
            "settings": SETTINGS,
            "client": "httpx.Client, keep-alive, one request at a time, stream: true",
        },
        results={
            "ratio": {key: summarize(r) for key, r in ratios.items()},
            "ratio_per_round": ratios,
            "ms": stats,
            "outputs": outputs,
            "identical_answers": {k: o["server_text"].strip() == o["in_process_text"] for k, o in outputs.items()},
        },
    )
