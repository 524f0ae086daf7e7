"""Retrieval latency through the project's `Retriever.search` against a raw LanceDB `table.search`.

Both sides query the same table with the same vectors in the same process, interleaved per query (the
order flips every round), so machine noise and drift hit both equally and the ratio is what remains:
the cost of the project's query building, column selection and conversion to `Chunk` records.
Embedding is done once up front and excluded, since it is identical on both sides and dominates.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from benchmarks._project import scratch_project
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "retrieval"
DEFAULT_REPEAT = 30  # rounds over all eval questions
WARMUP_ROUNDS = 2
TARGET_RATIO = 1.5


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    import lancedb

    from docs_assistant.config import load_settings
    from docs_assistant.data.corpus import load_corpus
    from docs_assistant.data.ingest import ingest
    from docs_assistant.rag.embeddings import load_embedder
    from docs_assistant.rag.index import CHUNKS, build_index
    from docs_assistant.rag.retriever import Retriever

    with scratch_project(NAME):
        settings = load_settings()
        embedder = load_embedder(settings.embedding)  # loaded once, for the index and the query vectors
        ingest(settings)
        index = build_index(settings, embedder=embedder)
        questions = [q.question for q in load_corpus(settings.paths.data_dir).qa_split("eval")]
        retriever = Retriever(settings, embedder=embedder)
        vectors = [retriever.embed(q) for q in questions]
        table = lancedb.connect(str(settings.paths.store_uri)).open_table(CHUNKS)
        k, metric = settings.retrieval.top_k, settings.retrieval.metric

        def project(v: list[float]) -> Any:
            return retriever.search(v)

        def raw(v: list[float]) -> Any:
            return table.search(v, vector_column_name="vector").distance_type(metric).limit(k).to_arrow()

        assert [c.id for c in project(vectors[0])] == raw(vectors[0]).column("id").to_pylist(), "sides disagree"
        samples: dict[str, list[float]] = {"project": [], "raw": []}
        for rnd in range(WARMUP_ROUNDS + repeat):
            gc.collect()
            sides = [("project", project), ("raw", raw)]
            if rnd % 2:
                sides.reverse()
            for v in vectors:
                for side, fn in sides:
                    ms = _timed(lambda fn=fn, v=v: fn(v))
                    if rnd >= WARMUP_ROUNDS:
                        samples[side].append(ms)

    proj, base = summarize(samples["project"]), summarize(samples["raw"])
    r50, r95 = ratio(proj["p50"], base["p50"]), ratio(proj["p95"], base["p95"])
    return BenchResult(
        name=NAME,
        description="Retriever(settings).search(vector) vs raw LanceDB table.search on the same table and vectors",
        repeat=repeat,
        target=f"<= {TARGET_RATIO}x",
        target_metric="ratio_p50 (project p50 / raw p50)",
        measured=r50,
        met=r50 <= TARGET_RATIO,
        headline=(
            f"p50 {proj['p50']:.2f} vs {base['p50']:.2f} ms ({r50:.2f}x); "
            f"p95 {proj['p95']:.2f} vs {base['p95']:.2f} ms ({r95:.2f}x)"
        ),
        params={
            "questions": len(questions),
            "warmup_rounds": WARMUP_ROUNDS,
            "top_k": k,
            "metric": metric,
            "ann_index": settings.retrieval.ann_index,
            "chunks": index.chunks,
        },
        results={"project_ms": proj, "raw_ms": base, "ratio_p50": r50, "ratio_p95": r95},
    )
