"""A re-run of the prompt-eval stage with nothing changed against a cold run (empty result cache).

Every case of a re-run must come from the cache (checked: zero misses), so it loads no model and
generates nothing; the target is that it costs at most 10% of the cold run. In-process, after imports
and the embedder are warm (both the same in either mode); the cold run includes loading the LLM, which
the cached run skips by design. The suites are the committed ones on a slice of their datasets (both
prompt variants), so one cold run stays around a minute on 2 cores.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from benchmarks._project import ROOT, scratch_project
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "eval_cache"
DEFAULT_REPEAT = 2
TARGET_FRACTION = 0.10
ROWS = {"qa.jsonl": 8, "safety.jsonl": 8}


def _slice_evals(root: Path) -> Path:
    """The committed evals/ with each dataset cut to its first rows; returns the suites file."""
    shutil.copytree(ROOT / "evals", root / "evals")
    for name, keep in ROWS.items():
        path = root / "evals" / "datasets" / name
        lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        path.write_text("\n".join(lines[:keep]) + "\n", encoding="utf-8")
    (root / "evals" / "baseline.json").unlink(missing_ok=True)  # the slice has its own numbers
    return root / "evals" / "suites.toml"


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    from docs_assistant.config import load_settings
    from docs_assistant.data.ingest import ingest
    from docs_assistant.evals import run_stage
    from docs_assistant.rag.embeddings import load_embedder
    from docs_assistant.rag.index import build_index

    cold: list[float] = []
    warm: list[float] = []
    misses: list[int] = []
    cases = 0
    with scratch_project(NAME) as root:
        config = _slice_evals(root)
        settings = load_settings(evals={"config": config})
        embedder = load_embedder(settings.embedding)
        ingest(settings)
        build_index(settings, embedder=embedder)
        for _ in range(repeat):
            shutil.rmtree(settings.paths.state_dir / "evals", ignore_errors=True)
            for bucket in (cold, warm):
                t0 = time.perf_counter()
                result = run_stage(load_settings(evals={"config": config}), embedder=embedder)
                bucket.append(time.perf_counter() - t0)
            misses.append(result.run.cache["misses"])
            summary = json.loads((result.report_dir / "summary.json").read_text(encoding="utf-8"))
            cases = sum(len(c) for v in summary["variants"].values() for c in v["cases"].values())
    cold_s, warm_s = summarize(cold), summarize(warm)
    measured = ratio(warm_s["p50"], cold_s["p50"])
    all_hit = not any(misses)
    return BenchResult(
        name=NAME,
        description="prompt-eval re-run with nothing changed vs a cold run (empty cache), in-process",
        repeat=repeat,
        target=f"<= {TARGET_FRACTION:.0%} of cold, every case a cache hit",
        target_metric="warm p50 / cold p50",
        target_applies_to="in_process (run_stage after imports and the embedder are warm)",
        measured=measured,
        met=all_hit and measured <= TARGET_FRACTION,
        headline=(
            f"re-run {warm_s['p50']:.2f} s vs cold {cold_s['p50']:.1f} s ({measured:.1%}); "
            f"{cases} scored cases, cache misses on re-run: {max(misses)}"
        ),
        params={"rows": ROWS, "variants": "committed run.variants", "cases": cases},
        results={"cold_s": cold_s, "warm_s": warm_s, "ratio_p50": measured, "warm_misses": misses},
    )
