"""The prompt-eval stage: suites → runner (cached) → gate (thresholds + baseline) → reports.

`run_stage` is what `docs-assistant eval` and the `eval_prompts` nox session call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.evals.cache import EvalCache
from docs_assistant.evals.config import EvalConfig, load_eval_config
from docs_assistant.evals.gate import Failure, evaluate_gate
from docs_assistant.evals.report import build_summary, markdown, write_eval_report
from docs_assistant.evals.runner import EvalRun, Progress, Runner, load_results


@dataclass
class StageResult:
    run: EvalRun
    failures: list[Failure]
    summary: dict[str, Any]
    report_dir: Path

    @property
    def passed(self) -> bool:
        return not self.failures


def run_stage(
    settings: Settings,
    *,
    config: EvalConfig | None = None,
    suites: list[str] | None = None,
    variants: list[str] | None = None,
    baseline: Path | None = None,
    embedder: Any = None,
    llm: Any = None,
    cache: EvalCache | None = None,
    progress: Progress | None = None,
) -> StageResult:
    config = config or load_eval_config(settings.evals.config)
    if suites:
        unknown = sorted(set(suites) - config.suites.keys())
        if unknown:
            from docs_assistant.errors import ConfigError

            raise ConfigError(
                f"unknown suite(s) {unknown}; {config.path} declares {sorted(config.suites)}", where="--suites"
            )
        config = EvalConfig(
            config.path,
            config.variants,
            config.baseline,
            config.repeat,
            config.min_pass,
            {k: v for k, v in config.suites.items() if k in suites},
        )
    baseline_path = baseline or settings.evals.baseline or config.baseline
    stored = None
    if baseline_path is not None and (baseline is not None or settings.evals.baseline or baseline_path.is_file()):
        stored = load_results(baseline_path) | {"source": str(baseline_path)}
    runner = Runner(settings, config, embedder=embedder, llm=llm, cache=cache, progress=progress)
    run = runner.run(variants)
    failures = evaluate_gate(run, config, stored)
    summary = build_summary(run, config, failures, stored)
    out = write_eval_report(settings.paths.reports_dir, summary, markdown(run, config, failures, stored))
    return StageResult(run, failures, summary, out)
