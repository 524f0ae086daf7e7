"""The finetune stage: training pairs → LoRA → evaluate base, candidate and champion → register → promote.

`run_finetune` is what `docs-assistant finetune` and the `finetune` nox session call. Every trained
adapter is registered (alias `candidate`) with its lineage; `champion` moves only when the candidate wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.data.store import FeatureStore
from docs_assistant.errors import ConfigError
from docs_assistant.lineage import git_sha
from docs_assistant.rag.prompts import PromptRegistry
from docs_assistant.train.data import FEEDBACK_ROWS_TAG, TrainingData, build_training_data, retrieval_renderer
from docs_assistant.train.lora import TrainResult, train_lora
from docs_assistant.train.promote import Decision, Scores, decide
from docs_assistant.train.report import copy_adapter, loss_curve, write_finetune_report

Progress = Callable[[str], None]


@dataclass
class FinetuneResult:
    summary: dict[str, Any]
    decision: Decision
    report_dir: Path

    @property
    def passed(self) -> bool:
        """The stage's gate: training must beat the base model (losing to the champion is not a failure)."""
        return self.decision.beats_base


def evaluate(settings: Settings, adapter: Path | None, embedder: Any) -> Scores:
    """The configured eval suites for the base model (`adapter` None) or base + adapter; cached like evals."""
    from docs_assistant.evals.config import EvalConfig, load_eval_config
    from docs_assistant.evals.runner import Runner

    config = load_eval_config(settings.evals.config)
    unknown = sorted(set(settings.finetune.eval_suites) - config.suites.keys())
    if unknown:
        raise ConfigError(
            f"suites {unknown} are not in {config.path} (it declares {sorted(config.suites)})",
            where="setting 'finetune.eval_suites'",
        )
    suites = {k: v for k, v in config.suites.items() if k in settings.finetune.eval_suites}
    config = EvalConfig(config.path, config.variants, None, 1, 1, suites)
    model = settings.model.model_copy(update={"adapter_path": adapter, "adapter_alias": None})
    variant = f"{settings.prompt.id}@{settings.prompt.version}"
    run = Runner(settings.model_copy(update={"model": model}), config, embedder=embedder).run([variant])
    metrics = run.variants[variant].metrics
    return {f"{suite}.{name}": value for suite, values in metrics.items() for name, value in values.items()}


def lineage(settings: Settings, data: TrainingData, train: TrainResult, chunks_version: int) -> dict[str, str]:
    tags = {
        "git_sha": git_sha(Path.cwd()),
        "base_model": str(train.params["base_model"]),
        "base_revision": str(train.params["base_revision"]),
        f"prompt.{data.prompt['id']}.v{data.prompt['version']}.hash": data.prompt["hash"],
        FEEDBACK_ROWS_TAG: str(data.feedback_rows),
        "data.chunks.version": str(chunks_version),
        "embedding_model": settings.embedding.model,
    }
    return tags | {f"data.{table}.version": str(v) for table, v in data.table_versions.items()}


def run_finetune(
    settings: Settings, *, embedder: Any = None, progress: Progress | None = None
) -> FinetuneResult | None:
    from docs_assistant.rag.embeddings import load_query_embedder
    from docs_assistant.rag.index import CHUNKS
    from docs_assistant.registry import CANDIDATE, CHAMPION, ModelRegistry, TrainingRun, adapter_hash

    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    prompt = PromptRegistry.load(settings.paths.prompts_dir).get(settings.prompt.id, settings.prompt.version)
    store = FeatureStore(settings.paths.store_uri)
    chunks_version = store.open(CHUNKS).version
    embedder = embedder or load_query_embedder(settings.embedding)
    say("rendering training pairs with the serving prompt and retrieval")
    data = build_training_data(settings, retrieval_renderer(settings, prompt, embedder), prompt, store)
    say(f"{len(data.train)} training pairs, {len(data.heldout)} held out; training LoRA")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    run_dir = settings.paths.state_dir / "finetune" / stamp
    train = train_lora(settings, data.train, data.heldout, run_dir / "adapter")
    if not train.main_process:  # under `accelerate launch`, one process evaluates, registers and reports
        return None
    digest = adapter_hash(train.adapter_dir)
    curve = loss_curve(train.history, train.heldout, run_dir / "loss_curve.png")

    registry = ModelRegistry(settings)
    champion = registry.get(CHAMPION)
    say("evaluating base, candidate" + (f" and champion v{champion.version}" if champion else ""))
    scores = {"candidate": evaluate(settings, train.adapter_dir, embedder), "base": evaluate(settings, None, embedder)}
    rivals: dict[str, Scores | None] = {"base": scores["base"], "champion": None}
    if champion is not None:
        rivals["champion"] = scores["champion"] = evaluate(settings, registry.fetch_adapter(CHAMPION), embedder)
    decision = decide(scores["candidate"], rivals, settings.finetune.promote_on, settings.finetune.min_improvement)

    tags = lineage(settings, data, train, chunks_version)
    metrics = train.metrics | {f"eval.{who}.{name}": v for who, values in scores.items() for name, v in values.items()}
    record = TrainingRun(train.adapter_dir, train.params, metrics, train.history, tags, [curve])
    run_id = registry.log_run(record)
    version = registry.register(run_id, digest, alias=CANDIDATE)
    if decision.promote:
        registry.set_alias(CHAMPION, version.version)
    registered = registry.get(version.version) or version
    say(f"registered version {version.version}" + (" and promoted it to champion" if decision.promote else ""))

    reports = settings.paths.reports_dir
    copy_adapter(train.adapter_dir, reports)
    (reports / "finetune").mkdir(parents=True, exist_ok=True)
    (reports / "finetune" / "loss_curve.png").write_bytes(curve.read_bytes())
    summary = {
        "registered": {"name": registered.name, "version": registered.version, "aliases": list(registered.aliases)},
        "promoted": decision.promote,
        "reason": decision.reason,
        "decision": decision.as_dict(),
        "previous_champion": champion.version if champion else None,
        "adapter_hash": digest,
        "adapter_dir": str(train.adapter_dir),
        "run_id": run_id,
        "scores": scores,
        "train": {"metrics": train.metrics, "params": train.params, "notes": train.notes, "heldout": train.heldout},
        "data": {"counts": data.counts, "table_versions": data.table_versions, "prompt": data.prompt},
        "lineage": tags,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return FinetuneResult(summary, decision, write_finetune_report(reports, summary))
