"""The gate: absolute thresholds per metric, and no regression against a baseline beyond a tolerance.

A failure names the variant, the metric, the value, the bound it broke and the worst cases, so the
person reading CI output knows what to open first.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from docs_assistant.evals.config import EvalConfig, MetricSpec
from docs_assistant.evals.runner import EvalRun

WORST_CASES = 3


@dataclass(frozen=True)
class Failure:
    variant: str
    suite: str
    metric: str
    value: float
    bound: float
    kind: str  # "threshold" or "regression"
    worst: list[tuple[str, float]]

    @property
    def message(self) -> str:
        worst = ", ".join(f"{case} ({score:.3g})" for case, score in self.worst) or "none"
        name = f"{self.variant} {self.suite}.{self.metric} = {self.value:.4f}"
        if self.kind == "threshold":
            return f"{name} breaks threshold {self.bound:.4f}; worst cases: {worst}"
        return f"{name} regressed past {self.bound:.4f} (baseline minus tolerance); worst cases: {worst}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"message": self.message}


#: what a stored baseline keeps of a run's summary: the identity it was measured on, and each variant's metrics
BASELINE_KEYS = ("model", "index_version", "headline")


def baseline_of(summary: dict[str, Any]) -> dict[str, Any]:
    """The next baseline from a run's summary (`eval --update-baseline`); `baseline_value` reads it back."""
    kept = {key: summary[key] for key in BASELINE_KEYS}
    kept["variants"] = {n: {"prompt": v["prompt"], "metrics": v["metrics"]} for n, v in summary["variants"].items()}
    return kept


def baseline_value(baseline: dict[str, Any] | None, variant: str, suite: str, metric: str) -> float | None:
    if not baseline:
        return None
    value = baseline.get("variants", {}).get(variant, {}).get("metrics", {}).get(suite, {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def _worst(cases: list[dict[str, Any]], spec: MetricSpec) -> list[tuple[str, float]]:
    scored = [(c["id"], float(c["scores"][spec.name])) for c in cases if spec.name in c["scores"]]
    scored.sort(key=lambda item: item[1], reverse=not spec.higher_is_better)
    return scored[:WORST_CASES]


def _breaks(value: float, bound: float, higher_is_better: bool) -> bool:
    if math.isnan(value):
        return True
    return value < bound - 1e-12 if higher_is_better else value > bound + 1e-12


def evaluate_gate(run: EvalRun, config: EvalConfig, baseline: dict[str, Any] | None) -> list[Failure]:
    failures: list[Failure] = []
    for name, result in run.variants.items():
        for suite_name, suite in config.suites.items():
            values = result.metrics.get(suite_name, {})
            for spec in suite.metrics.values():
                if spec.name not in values:
                    continue
                value = values[spec.name]
                worst = _worst(result.cases.get(suite_name, []), spec)
                if spec.threshold is not None and _breaks(value, spec.threshold, spec.higher_is_better):
                    failures.append(Failure(name, suite_name, spec.name, value, spec.threshold, "threshold", worst))
                    continue
                before = baseline_value(baseline, name, suite_name, spec.name) if spec.regression else None
                if before is None:
                    continue
                bound = before - spec.tolerance if spec.higher_is_better else before + spec.tolerance
                if _breaks(value, bound, spec.higher_is_better):
                    failures.append(Failure(name, suite_name, spec.name, value, bound, "regression", worst))
    return failures
