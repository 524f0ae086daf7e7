"""Validation throughput on 100,000 generated documents, and what it adds to ingest.

Three measurements per round on the same generated `data/`, each into an empty store, order alternating:
- `ingest`: the plain ingest (`load_corpus` + `ingest`), which parses and syncs but checks little;
- `stage`: the validate stage as `nox -s validate_data` runs it (`run_validation`: read, clean, pandera
  contracts, quality checks, quarantine, then the same ingest of the valid rows);
- `validate`: `validate()` alone (no writes), for rows/s.
Target: the stage takes at most 25 % longer than the plain ingest (validation adds <= 25 %).

Each side is timed in wall-clock and in this process's CPU seconds (every thread, LanceDB's included). The
stage and the ingest of one round run back to back, so the target compares them per round (the median of
the per-round ratios, with their spread) rather than two medians that may come from different moments of
a shared machine; the CPU ratio decides, because other jobs on the machine take wall time from either side
at random but no CPU seconds from this process. The wall-clock ratios are reported beside it.
"""

from __future__ import annotations

import gc
import random
import shutil
import time
from pathlib import Path

from benchmarks._project import scratch_project
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "validate"
DEFAULT_REPEAT = 3
DOCUMENTS = 100_000
QA_PAIRS = 2_000
TARGET_ADDED = 0.25
SEED = 1234


def generate(data: Path, documents: int = DOCUMENTS, qa_pairs: int = QA_PAIRS, seed: int = SEED) -> int:
    """Documents of 80-200 words drawn from the sample corpus's vocabulary (distinct, so no near-duplicates),
    and QA pairs citing them; returns the number of rows written."""
    rng = random.Random(seed)
    words = sorted(
        {w for p in (data / "docs").glob("*.md") for w in p.read_text(encoding="utf-8").split() if w.isalpha()}
    )
    shutil.rmtree(data)
    (data / "docs").mkdir(parents=True)
    (data / "qa").mkdir()
    for i in range(documents):
        body = " ".join(rng.choices(words, k=rng.randint(80, 200)))
        sentences = body.replace(" ", ". ", 1)
        (data / "docs" / f"gen-{i:06d}.md").write_text(
            f"---\nid: gen-{i:06d}\ntitle: Generated page {i}\nsource: docs/gen/{i:06d}.md\n---\n# Page {i}\n\n{sentences}.\n",
            encoding="utf-8",
        )
    import json

    for split, share in (("train", 0.7), ("eval", 0.3)):
        n = int(qa_pairs * share)
        lines = [
            json.dumps(
                {
                    "id": f"qa-{split}-{j:05d}",
                    "question": f"What does generated page {j} in {split} say about {rng.choice(words)}?",
                    "answer": " ".join(rng.choices(words, k=12)),
                    "doc_ids": [f"gen-{rng.randrange(documents):06d}"],
                }
            )
            for j in range(n)
        ]
        (data / "qa" / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return documents + int(qa_pairs * 0.7) + int(qa_pairs * 0.3)


def _fresh_store(root: Path) -> None:
    shutil.rmtree(root / "var", ignore_errors=True)
    shutil.rmtree(root / "reports", ignore_errors=True)


def run(repeat: int = DEFAULT_REPEAT, documents: int = DOCUMENTS) -> BenchResult:
    from docs_assistant.config import load_settings
    from docs_assistant.data.corpus import load_corpus
    from docs_assistant.data.ingest import ingest
    from docs_assistant.data.validate import run_validation, validate

    with scratch_project(NAME) as root:
        rows = generate(root / "data", documents)
        settings = load_settings()

        def plain() -> None:
            ingest(settings, load_corpus(settings.paths.data_dir))

        def stage() -> None:
            result = run_validation(settings)
            if not result.passed or result.counts["total"]["valid"] != rows:
                raise RuntimeError(f"generated data should all be valid: {result.counts}")

        def only_validate() -> None:
            validate(settings)

        samples: dict[str, list[float]] = {"ingest": [], "stage": [], "validate": []}
        cpu: dict[str, list[float]] = {"ingest": [], "stage": [], "validate": []}
        sides = [("ingest", plain), ("stage", stage), ("validate", only_validate)]
        for _, fn in sides[:2]:  # untimed: imports and first allocations would land on whichever side runs first
            _fresh_store(root)
            fn()
        for rnd in range(repeat):
            for side, fn in sides if rnd % 2 == 0 else list(reversed(sides)):
                _fresh_store(root)
                gc.collect()
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                samples[side].append(time.perf_counter() - t0)
                cpu[side].append(time.process_time() - c0)

    ing, stg, val = (summarize(samples[k]) for k in ("ingest", "stage", "validate"))
    added_wall = summarize([s / i - 1 for s, i in zip(samples["stage"], samples["ingest"], strict=True)])
    added_cpu = summarize([s / i - 1 for s, i in zip(cpu["stage"], cpu["ingest"], strict=True)])
    added = added_cpu["p50"]
    rate = [rows / s for s in samples["validate"]]
    rps = summarize(rate)
    share = ratio(val["p50"], stg["p50"])
    return BenchResult(
        name=NAME,
        description=f"validate stage vs plain ingest on {documents:,} generated documents + {QA_PAIRS:,} QA pairs",
        repeat=repeat,
        target=f"<= {TARGET_ADDED:.0%} added",
        target_metric="added: median over rounds of stage CPU s / ingest CPU s - 1 (the two back to back)",
        measured=added,
        met=added <= TARGET_ADDED,
        headline=(
            f"validate {rps['p50']:,.0f} rows/s (min {rps['min']:,.0f}, max {rps['max']:,.0f}); "
            f"stage adds {added:+.0%} CPU (rounds {added_cpu['min']:+.0%} to {added_cpu['max']:+.0%}) and "
            f"{added_wall['p50']:+.0%} wall ({added_wall['min']:+.0%} to {added_wall['max']:+.0%}) to ingest; "
            f"stage {stg['p50']:.1f} s vs ingest {ing['p50']:.1f} s; validation is {share:.0%} of the stage"
        ),
        params={"documents": documents, "qa_pairs": QA_PAIRS, "rows": rows, "seed": SEED},
        results={
            "ingest_s": ing,
            "stage_s": stg,
            "validate_s": val,
            "ingest_cpu_s": summarize(cpu["ingest"]),
            "stage_cpu_s": summarize(cpu["stage"]),
            "validate_cpu_s": summarize(cpu["validate"]),
            "validate_rows_per_s": rps,
            "added": added,
            "added_cpu_per_round": added_cpu,
            "added_wall_per_round": added_wall,
            "samples_s": samples,
            "samples_cpu_s": cpu,
            "validation_share_of_stage": share,
        },
    )
