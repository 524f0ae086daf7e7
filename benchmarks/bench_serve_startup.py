"""Service start-up: `docs-assistant serve` from process start to `/readyz` 200, against its floor.

The floor is a bare script, run as its own process the same way: it imports torch and transformers,
loads the same tiny model with `from_pretrained` (safetensors, float32) and the same sentence-transformers
embedder, then does what the service's warm-up does (embed the warm-up question, generate greedily from
the very prompt the pipeline renders for it, same token limits) and prints the answer. That is the least
any process serving this model can do before its first answer; everything above it (settings, LanceDB,
llama-index, FastAPI, uvicorn, the pipeline) is what the service adds. The floor's answer must equal the
pipeline's warm-up answer (checked on every floor run; the first server's `/v1/answer` is compared and
reported), so both sides do the same work. Server and floor alternate per repeat (the order flips), after one untimed
process that imports everything either side imports (bytecode and page caches). The scratch project is
ingested and indexed first, untimed. The server's own phase durations come from `/readyz`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._project import scratch_project
from benchmarks._server import POLL_S, client, prepare, process_env, serve
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "serve_startup"
DEFAULT_REPEAT = 3  # server/floor pairs (each ~30 s on 2 cores)
TARGET_RATIO = 1.3

FLOOR = """
import json, sys, time
t0 = time.perf_counter()
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModelForCausalLM, AutoTokenizer
t1 = time.perf_counter()
a = json.loads(open(sys.argv[1], encoding="utf-8").read())
tok = AutoTokenizer.from_pretrained(a["model"], trust_remote_code=False)
model = AutoModelForCausalLM.from_pretrained(
    a["model"], trust_remote_code=False, use_safetensors=True, dtype=torch.float32
).to("cpu").eval()
embedder = SentenceTransformer(a["embedder"], device="cpu", trust_remote_code=False)
t2 = time.perf_counter()
embedder.encode([a["question"]], normalize_embeddings=True)
enc = tok(a["prompt"], return_tensors="pt")
ids, mask = enc.input_ids[:, -a["max_input_tokens"]:], enc.attention_mask[:, -a["max_input_tokens"]:]
with torch.inference_mode():
    out = model.generate(
        input_ids=ids, attention_mask=mask, max_new_tokens=a["max_new_tokens"], do_sample=False,
        pad_token_id=tok.pad_token_id or tok.eos_token_id,
    )
text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
t3 = time.perf_counter()
print(json.dumps({"text": text, "imports": t1 - t0, "load": t2 - t1, "warmup": t3 - t2}), flush=True)
"""
#: untimed, once: everything the server and the floor import, so neither timed side compiles or pages in
WARM_UP = (
    "import docs_assistant.cli, docs_assistant.serve.app, docs_assistant.rag.pipeline, docs_assistant.rag.llm, "
    "docs_assistant.rag.embeddings, lancedb, torch, transformers, sentence_transformers, "
    "llama_index.embeddings.huggingface; from transformers import AutoModelForCausalLM, AutoTokenizer, "
    "LlamaForCausalLM"
)


def _floor(root: Path, args_file: Path, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Seconds from process start to the floor's printed answer (interpreter teardown excluded, as for the server)."""
    with open(root / "floor.log", "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", FLOOR, str(args_file)],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            seconds = time.perf_counter() - t0
            proc.stdout.read()
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if proc.returncode or not line:
        tail = (root / "floor.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"floor script exited {proc.returncode}: {tail}")
    return seconds, json.loads(line)


def _server(root: Path, env: dict[str, str], ask: bool = False) -> tuple[float, dict[str, Any], int, str | None]:
    """Seconds from process start to `/readyz` 200, the phases it reports, the number of polls, and (when
    `ask`, after the timing) the server's own answer to the warm-up question."""
    from docs_assistant.serve.startup import WARMUP_QUESTION

    with serve(root, env, name="startup") as server:
        assert server.ready_s is not None
        answer = None
        if ask:
            with client(server.url) as http:
                response = http.post("/v1/answer", json={"question": WARMUP_QUESTION})
                response.raise_for_status()
                answer = response.json()["answer"]
        return server.ready_s, server.readyz.get("phases", {}), server.polls, answer


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    from docs_assistant.config import load_settings
    from docs_assistant.rag.embeddings import load_embedder, resolve_embedder_path
    from docs_assistant.rag.pipeline import RagPipeline, format_context
    from docs_assistant.serve.startup import PHASES, WARMUP_QUESTION

    server_s: list[float] = []
    floor_s: list[float] = []
    phases: dict[str, list[float]] = {p: [] for p in PHASES}
    before_phases: list[float] = []
    floor_parts: dict[str, list[float]] = {"imports": [], "load": [], "warmup": []}
    polls: list[int] = []
    server_answer = None
    with scratch_project(NAME) as root:
        settings = load_settings()
        t0 = time.perf_counter()
        embedder = load_embedder(settings.embedding)
        model_dir = prepare(settings, embedder)
        prepare_s = time.perf_counter() - t0
        # the warm-up's exact prompt and answer, from the pipeline itself (untimed)
        pipeline = RagPipeline(settings, embedder=embedder)
        chunks, _ = pipeline.retriever.retrieve(WARMUP_QUESTION)
        prompt = pipeline.prompt.render(context=format_context(chunks), question=WARMUP_QUESTION)
        reference = pipeline.answer(WARMUP_QUESTION).text
        del pipeline
        args_file = root / "floor-args.json"
        floor_args = {
            "model": str(model_dir),
            "embedder": resolve_embedder_path(settings.embedding.model),
            "question": WARMUP_QUESTION,
            "prompt": prompt,
            "max_new_tokens": settings.model.max_new_tokens,
            "max_input_tokens": settings.model.max_input_tokens,
        }
        args_file.write_text(json.dumps(floor_args), encoding="utf-8")
        env = process_env()

        subprocess.run([sys.executable, "-c", WARM_UP], cwd=root, env=env, capture_output=True, check=True)

        for i in range(repeat):
            for side in ("server", "floor") if i % 2 == 0 else ("floor", "server"):
                if side == "server":
                    seconds, phase_ms, n, answer = _server(root, env, ask=i == 0)
                    if answer is not None:
                        server_answer = answer
                    server_s.append(seconds)
                    polls.append(n)
                    for p in PHASES:
                        phases[p].append(phase_ms.get(p, 0.0) / 1000)
                    before_phases.append(seconds - sum(phase_ms.values()) / 1000)
                else:
                    seconds, out = _floor(root, args_file, env)
                    if out["text"] != reference:
                        raise RuntimeError(f"floor's answer {out['text']!r} differs from the pipeline's {reference!r}")
                    floor_s.append(seconds)
                    for k in floor_parts:
                        floor_parts[k].append(out[k])

    srv, flr = summarize(server_s), summarize(floor_s)
    r50 = ratio(srv["p50"], flr["p50"])
    paired = summarize([s / f for s, f in zip(server_s, floor_s, strict=True)])
    phase_stats = {p: summarize(v) for p, v in phases.items()}
    slowest = max(PHASES, key=lambda p: phase_stats[p]["p50"])
    return BenchResult(
        name=NAME,
        description="docs-assistant serve: process start to /readyz 200 vs a bare torch+transformers script "
        "that loads the same weights and runs the same warm-up",
        repeat=repeat,
        target=f"<= {TARGET_RATIO}x",
        target_metric="ratio_p50 (server p50 / floor p50)",
        measured=r50,
        met=r50 <= TARGET_RATIO,
        headline=(
            f"ready {srv['p50']:.2f} s vs floor {flr['p50']:.2f} s ({r50:.2f}x; server range "
            f"{srv['min']:.2f}-{srv['max']:.2f}, floor {flr['min']:.2f}-{flr['max']:.2f}); "
            f"slowest phase {slowest} {phase_stats[slowest]['p50']:.2f} s"
        ),
        params={
            "pairs": repeat,
            "warm_up": "one untimed process importing what both sides import",
            "poll_interval_s": POLL_S,
            "warmup_question": WARMUP_QUESTION,
            "max_new_tokens": settings.model.max_new_tokens,
            "model": settings.model.name,
            "embedder": settings.embedding.model,
            "floor": "python -c: import torch + transformers + sentence_transformers, from_pretrained, "
            "embed the question, generate from the pipeline's rendered warm-up prompt",
        },
        results={
            "server_s": srv,
            "floor_s": flr,
            "ratio_p50": r50,
            "ratio_paired": paired,
            "server_phases_s": phase_stats,
            "server_before_phases_s": summarize(before_phases),
            "floor_parts_s": {k: summarize(v) for k, v in floor_parts.items()},
            "readyz_polls": summarize(polls),
            "setup_s": {"prepare": round(prepare_s, 3)},
            # the floor's answer always equals the pipeline's warm-up answer (checked every run); the server's
            # /v1/answer too, unless the service changes answers on the way out
            "server_answer_matches_warmup": server_answer == reference,
        },
    )
