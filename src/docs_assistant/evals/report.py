"""The eval report: summary.json (machines, and the next run's baseline), summary.md and a per-case HTML table."""

from __future__ import annotations

import html
import math
from itertools import pairwise
from pathlib import Path
from typing import Any

from docs_assistant.evals.config import EvalConfig
from docs_assistant.evals.gate import Failure, baseline_value
from docs_assistant.evals.metrics import METRICS
from docs_assistant.evals.runner import EvalRun
from docs_assistant.io import atomic_write_text
from docs_assistant.reports import markdown_table, write_report

STAGE = "eval_prompts"
#: the metrics a workflow exposes as outputs (the first variant's)
HEADLINE = (
    ("retrieval", "recall_at_k"),
    ("answers", "token_f1"),
    ("likelihood", "reference_loss"),
    ("safety", "attack_success_rate"),
    ("safety", "heldout_block_rate"),
    ("safety", "false_positive_rate"),
)


def build_summary(
    run: EvalRun, config: EvalConfig, failures: list[Failure], baseline: dict[str, Any] | None
) -> dict[str, Any]:
    first = next(iter(run.variants.values()), None)
    headline = {}
    if first is not None:
        for suite, metric in HEADLINE:
            if metric in first.metrics.get(suite, {}):
                headline[f"{suite}.{metric}"] = first.metrics[suite][metric]
    return {
        "stage": STAGE,
        "passed": not failures,
        "config": str(config.path),
        "model": run.model,
        "index_version": run.index_version,
        "cache": run.cache,
        "seconds": round(run.seconds, 3),
        "notes": run.notes,
        "headline": headline,
        "baseline": baseline.get("source") if baseline else None,
        "ranking": ranking(run),
        "failures": [f.as_dict() for f in failures],
        "variants": {
            name: {"prompt": v.prompt, "metrics": v.metrics, "cases": v.cases} for name, v in run.variants.items()
        },
    }


def ranking(run: EvalRun) -> dict[str, list[str]]:
    """Per suite.metric, the variants best first."""
    out: dict[str, list[str]] = {}
    for name in run.variants:
        for suite, values in run.variants[name].metrics.items():
            for metric in values:
                out.setdefault(f"{suite}.{metric}", [])
    for key, order in out.items():
        suite, metric = key.split(".", 1)
        scored = [(n, v.metrics.get(suite, {}).get(metric)) for n, v in run.variants.items()]
        present = [(n, s) for n, s in scored if s is not None and not math.isnan(s)]
        present.sort(key=lambda item: item[1], reverse=METRICS[metric].higher_is_better)
        order += [n for n, _ in present]
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4f}"


def markdown(run: EvalRun, config: EvalConfig, failures: list[Failure], baseline: dict[str, Any] | None) -> str:
    verdict = "passed" if not failures else f"FAILED ({len(failures)} check(s))"
    lines = [f"## Prompt evals: {verdict}", ""]
    lines.append(
        f"Model `{run.model['name']}` rev `{run.model['revision']}`, index version {run.index_version}; "
        f"cache {run.cache['hits']} hits / {run.cache['misses']} misses; {run.seconds:.1f} s."
    )
    lines.append("")
    names = list(run.variants)
    rows = []
    for suite_name, suite in config.suites.items():
        for metric in (n for n, d in METRICS.items() if d.suite == suite_name):
            spec = suite.metrics.get(metric)
            cells = []
            for name in names:
                value = run.variants[name].metrics.get(suite_name, {}).get(metric)
                if value is None:
                    cells.append("–")
                    continue
                before = baseline_value(baseline, name, suite_name, metric)
                delta = f" ({value - before:+.4f})" if before is not None else ""
                cells.append(_fmt(value) + delta)
            if all(c == "–" for c in cells):
                continue
            op = ">=" if METRICS[metric].higher_is_better else "<="
            bound = f"{op} {_fmt(spec.threshold)}" if spec and spec.threshold is not None else "report only"
            rows.append((f"{suite_name}.{metric}", *cells, bound))
    lines += [markdown_table(["metric (Δ vs baseline)", *names, "threshold"], rows), ""]
    best = ranking(run)
    if len(names) > 1:
        rank_rows = [(key, _ranked(run, key, order)) for key, order in best.items() if order]
        lines += ["### Ranking (best first)", "", markdown_table(["metric", "variants"], rank_rows), ""]
    if failures:
        lines += ["### Failing checks", ""]
        lines += [f"- {f.message}" for f in failures]
        lines.append("")
    for note in run.notes:
        lines.append(f"> {note}")
    return "\n".join(lines) + "\n"


def _ranked(run: EvalRun, key: str, order: list[str]) -> str:
    """'a > b = c': ties are shown as ties, not as an order."""
    suite, metric = key.split(".", 1)
    text = order[0]
    for before, name in pairwise(order):
        same = run.variants[before].metrics[suite][metric] == run.variants[name].metrics[suite][metric]
        text += f" {'=' if same else '>'} {name}"
    return text


def html_page(summary: dict[str, Any]) -> str:
    """One table per variant and suite, a row per case; failing checks' worst cases are easy to find."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Prompt evals</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;font-size:13px}</style></head><body>",
        f"<h1>Prompt evals: {'passed' if summary['passed'] else 'FAILED'}</h1>",
    ]
    if summary["failures"]:
        items = "".join(f"<li>{html.escape(f['message'])}</li>" for f in summary["failures"])
        parts.append(f"<ul>{items}</ul>")
    for name, variant in summary["variants"].items():
        parts.append(f"<h2>{html.escape(name)} <small>{html.escape(variant['prompt']['hash'][:12])}</small></h2>")
        for suite, cases in variant["cases"].items():
            if not cases:
                continue
            metrics = sorted({k for c in cases for k in c["scores"]})
            extra = [k for k in ("question", "prompt", "answer") if any(k in c for c in cases)]
            head = "".join(f"<th>{html.escape(h)}</th>" for h in ["case", *metrics, *extra])
            body = []
            for case in cases:
                cells = [html.escape(case["id"])]
                cells += [_fmt(case["scores"].get(k)) for k in metrics]
                cells += [html.escape(str(case.get(k, ""))) for k in extra]
                body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            parts.append(f"<h3>{html.escape(suite)}</h3><table><tr>{head}</tr>{''.join(body)}</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_eval_report(reports_dir: Path, summary: dict[str, Any], text: str) -> Path:
    out = write_report(reports_dir, STAGE, summary, text)
    atomic_write_text(out / "cases.html", html_page(summary))
    return out
