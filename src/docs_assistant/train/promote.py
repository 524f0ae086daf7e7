"""Promotion: a candidate adapter becomes champion only if it beats the base model and the champion.

"Beats" means better by at least `finetune.min_improvement` (relative) on every `finetune.promote_on`
metric, in the metric's own direction (lower loss, higher similarity). A candidate that loses is still
registered, with the reason, so the attempt and its lineage are never lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from docs_assistant.errors import ConfigError
from docs_assistant.evals.metrics import METRICS

#: per rival ("base", "champion"): {"<suite>.<metric>": value}
Scores = dict[str, float]


@dataclass(frozen=True)
class Comparison:
    metric: str
    rival: str
    candidate: float
    rival_value: float
    higher_is_better: bool
    wins: bool


@dataclass
class Decision:
    beats_base: bool
    beats_champion: bool  # True when there is no champion yet
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def promote(self) -> bool:
        return self.beats_base and self.beats_champion

    @property
    def reason(self) -> str:
        lost = [c for c in self.comparisons if not c.wins]
        if not lost:
            rivals = sorted({c.rival for c in self.comparisons})
            return f"beats {' and '.join(rivals)} on every promote_on metric"
        return "; ".join(
            f"{c.metric} {c.candidate:.4f} does not beat {c.rival} {c.rival_value:.4f} "
            f"({'higher' if c.higher_is_better else 'lower'} is better)"
            for c in lost
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "beats_base": self.beats_base,
            "beats_champion": self.beats_champion,
            "reason": self.reason,
            "comparisons": [c.__dict__ for c in self.comparisons],
        }


def direction(metric: str) -> bool:
    """True when higher is better for '<suite>.<metric>'; an unknown name is a configuration error."""
    suite, _, name = metric.partition(".")
    known = METRICS.get(name)
    if known is None or known.suite != suite:
        choices = sorted(f"{d.suite}.{n}" for n, d in METRICS.items())
        raise ConfigError(
            f"unknown metric {metric!r}; choose from {choices}",
            where="setting 'finetune.promote_on' (env DOCS_ASSISTANT_FINETUNE__PROMOTE_ON)",
        )
    return known.higher_is_better


def wins(candidate: float, rival: float, higher_is_better: bool, margin: float) -> bool:
    if higher_is_better:
        return candidate > rival and candidate - rival >= margin * abs(rival)
    return candidate < rival and rival - candidate >= margin * abs(rival)


def decide(
    candidate: Scores, rivals: dict[str, Scores | None], promote_on: list[str], min_improvement: float
) -> Decision:
    """Compare the candidate with each rival that exists (`None`: no champion yet, nothing to beat)."""
    comparisons = []
    for metric in promote_on:
        higher = direction(metric)
        for rival, scores in rivals.items():
            if scores is None:
                continue
            if metric not in candidate or metric not in scores:
                raise ConfigError(
                    f"metric {metric!r} was not measured for the candidate and {rival}",
                    where="setting 'finetune.eval_suites'",
                    hint="run the suite that defines it",
                )
            comparisons.append(
                Comparison(
                    metric,
                    rival,
                    candidate[metric],
                    scores[metric],
                    higher,
                    wins(candidate[metric], scores[metric], higher, min_improvement),
                )
            )
    beats = {r: all(c.wins for c in comparisons if c.rival == r) for r in rivals}
    return Decision(beats.get("base", True), beats.get("champion", True), comparisons)
