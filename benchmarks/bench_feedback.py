"""Reading the feedback table after 1,000 posts through the service's append path, against the same table fully optimized.

Each post commits one small file and a scan opens every file, so uncompacted feedback read tens of times
slower than after `optimize()`. The service now merges the files in the background every
`serve.feedback_compact_every` posts. Posts go through `Service.append_feedback` (what `POST /v1/feedback`
runs in its worker thread: redaction, one committed append, the compaction trigger) into two stores side by
side, one post to each in turn: the default setting, and 0 (no compaction: the behaviour before). Then the
table as the running service leaves it (its compaction idle, no stop) and a copy given a full `optimize()`
are read in turn, `repeat` times each, every read a fresh handle's `to_arrow()`. The worst case between two
compactions (`feedback_compact_every - 1` more posts) and the uncompacted store are measured beside them.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks._project import scratch_project
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "feedback"
DEFAULT_REPEAT = 30
POSTS = 1_000
TARGET_RATIO = 1.5


def _service(settings: Any, answers: list[dict[str, Any]]) -> Any:
    from docs_assistant.serve.service import Service

    service = Service(settings, embedder=None, llm=None)  # the append path needs neither model
    for a in answers:
        service.answers.add(a["id"], a["question"], a["answer"])
    return service


def _post(service: Any, answers: list[dict[str, Any]], n: int) -> float:
    from docs_assistant.serve.schemas import FeedbackRequest

    a = answers[n % len(answers)]
    body = FeedbackRequest(answer_id=a["id"], rating=n % 3 - 1, correction=f"{a['answer']} (note {n})")
    t0 = time.perf_counter()
    service.append_feedback(body)
    return time.perf_counter() - t0


def _read_s(store_uri: Path) -> float:
    from docs_assistant.data.store import FEEDBACK, FeatureStore

    table = FeatureStore(store_uri).open(FEEDBACK)  # a fresh handle, as each reading stage opens one
    t0 = time.perf_counter()
    rows = table.to_arrow()
    elapsed = time.perf_counter() - t0
    assert rows.num_rows >= POSTS, rows.num_rows
    return elapsed


def _optimized_copy(store_uri: Path, dest: Path) -> Path:
    from docs_assistant.data.store import FEEDBACK, FeatureStore

    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(store_uri, dest)
    FeatureStore(dest).open(FEEDBACK).optimize()
    return dest


def _fragments(store_uri: Path) -> int:
    from docs_assistant.data.store import FEEDBACK, FeatureStore

    return FeatureStore(store_uri).open(FEEDBACK).stats()["fragment_stats"]["num_fragments"]


def _reads(stores: dict[str, Path], repeat: int) -> dict[str, list[float]]:
    """`repeat` reads of each store, interleaved (order rotating per round), after one untimed read each."""
    for uri in stores.values():
        _read_s(uri)
    samples: dict[str, list[float]] = {k: [] for k in stores}
    names = list(stores)
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(_read_s(stores[name]))
    return samples


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    from docs_assistant.config import load_settings

    with scratch_project(NAME) as root:
        lines = (root / "data" / "qa" / "train.jsonl").read_text(encoding="utf-8").splitlines()
        answers = [json.loads(x) | {"id": f"ans-{i}"} for i, x in enumerate(lines) if x.strip()]
        compacting = load_settings(paths={"state_dir": root / "var-compacting"})
        plain = load_settings(paths={"state_dir": root / "var-plain"}, serve={"feedback_compact_every": 0})
        every = compacting.serve.feedback_compact_every
        services = {"compacting": _service(compacting, answers), "plain": _service(plain, answers)}
        append: dict[str, list[float]] = {k: [] for k in services}
        for n in range(POSTS):
            for name in ("compacting", "plain") if n % 2 else ("plain", "compacting"):
                append[name].append(_post(services[name], answers, n))
        assert services["compacting"].wait_feedback_compaction(120), "compaction still running after 120 s"
        served, uncompacted = compacting.paths.store_uri, plain.paths.store_uri
        optimized = _optimized_copy(served, root / "optimized")
        fragments = {"served": _fragments(served), "optimized": _fragments(optimized), "plain": _fragments(uncompacted)}
        reads = _reads({"served": served, "optimized": optimized, "plain": uncompacted}, repeat)

        for n in range(POSTS, POSTS + every - 1):  # the most files a running service leaves between compactions
            _post(services["compacting"], answers, n)
        assert services["compacting"].wait_feedback_compaction(120)
        worst_optimized = _optimized_copy(served, root / "worst-optimized")
        fragments["worst"] = _fragments(served)
        worst = _reads({"worst": served, "worst_optimized": worst_optimized}, repeat)

    stats = {k: summarize(v) for k, v in reads.items()}
    worst_stats = {k: summarize(v) for k, v in worst.items()}
    measured = ratio(stats["served"]["p50"], stats["optimized"]["p50"])
    per_round = [ratio(s, o) for s, o in zip(reads["served"], reads["optimized"], strict=True)]
    plain_ratio = ratio(stats["plain"]["p50"], stats["optimized"]["p50"])
    worst_ratio = ratio(worst_stats["worst"]["p50"], worst_stats["worst_optimized"]["p50"])
    appends = {k: summarize(v) for k, v in append.items()}
    return BenchResult(
        name=NAME,
        description=f"reading the feedback table after {POSTS:,} posts (Service.append_feedback) vs the same table optimized",
        repeat=repeat,
        target=f"<= {TARGET_RATIO}x the optimized table's read",
        target_metric="served read p50 / optimized read p50",
        target_applies_to=f"the table as the running service leaves it after {POSTS:,} posts, its compaction idle",
        measured=measured,
        met=measured <= TARGET_RATIO,
        headline=(
            f"read {stats['served']['p50'] * 1000:.2f} ms ({fragments['served']} files) vs optimized "
            f"{stats['optimized']['p50'] * 1000:.2f} ms ({measured:.2f}x); worst between compactions "
            f"{worst_ratio:.2f}x ({fragments['worst']} files); without compaction {plain_ratio:.1f}x "
            f"({fragments['plain']} files); append p50 {appends['compacting']['p50'] * 1000:.1f} ms vs "
            f"{appends['plain']['p50'] * 1000:.1f} ms without"
        ),
        params={"posts": POSTS, "feedback_compact_every": every, "reads_per_table": repeat},
        results={
            "read_s": stats,
            "ratio_p50": measured,
            "ratio_per_round": summarize(per_round),
            "uncompacted_ratio_p50": plain_ratio,
            "worst_between_compactions_read_s": worst_stats,
            "worst_between_compactions_ratio_p50": worst_ratio,
            "fragments": fragments,
            "append_s": appends,
        },
    )
