"""The finetune report: `reports/finetune/summary.{json,md}`, the loss curve and a copy of the adapter."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from docs_assistant.reports import markdown_table, write_report

STAGE = "finetune"


def loss_curve(history: list[dict[str, float]], heldout: list[dict[str, float]], path: Path) -> Path:
    """Training loss per optimizer step and held-out loss per epoch, one picture (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display in CI, and no GUI toolkit import
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([r["step"] for r in history], [r["loss"] for r in history], label="train loss", linewidth=1.2)
    ax.plot([r["step"] for r in heldout], [r["heldout_loss"] for r in heldout], "o-", label="held-out loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats/token, answer tokens only)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


def copy_adapter(adapter_dir: Path, reports_dir: Path) -> Path:
    """The registered adapter's files next to the report, so a workflow uploads them with it."""
    target = reports_dir / STAGE / "adapter"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(adapter_dir, target)
    return target


def markdown(summary: dict[str, Any]) -> str:
    reg, decision, m = summary["registered"], summary["decision"], summary["train"]["metrics"]
    verdict = "promoted to **champion**" if summary["promoted"] else "registered, **not promoted**"
    lines = [
        "# Fine-tuning (LoRA)",
        "",
        f"Version {reg['version']} of `{reg['name']}`: {verdict}. {decision['reason']}.",
        "",
        "## Candidate vs rivals",
        "",
        markdown_table(
            ["metric", "rival", "candidate", "rival value", "better", "wins"],
            [
                [
                    c["metric"],
                    c["rival"],
                    f"{c['candidate']:.4f}",
                    f"{c['rival_value']:.4f}",
                    "higher" if c["higher_is_better"] else "lower",
                    "yes" if c["wins"] else "no",
                ]
                for c in decision["comparisons"]
            ],
        ),
        "",
        "## Training",
        "",
        markdown_table(
            ["measure", "value"],
            [
                ["train loss (first → last step)", f"{m['train_loss_first']:.3f} → {m['train_loss_last']:.3f}"],
                ["held-out loss (base → adapter)", f"{m['heldout_loss_base']:.3f} → {m['heldout_loss']:.3f}"],
                ["steps / trained tokens", f"{m['steps']:.0f} / {m['trained_tokens']:.0f}"],
                ["tokens/s (steady state, median)", f"{m['tokens_per_s']:.0f}"],
                ["MFU (4N FLOPs/token)", f"{m['mfu']:.2%} of {summary['train']['notes']['peak_flops']}"],
                ["peak memory", f"{m['peak_memory_mb']:.0f} MB ({summary['train']['notes']['peak_memory']})"],
                ["training time", f"{m['train_seconds']:.1f} s"],
            ],
        ),
        "",
        "## Data",
        "",
        markdown_table(["count", "rows"], sorted(summary["data"]["counts"].items())),
        "",
        f"Table versions: {summary['data']['table_versions']}; prompt {summary['data']['prompt']['id']} "
        f"v{summary['data']['prompt']['version']} ({summary['data']['prompt']['hash'][:12]}); "
        f"adapter sha256 {summary['adapter_hash'][:16]}.",
    ]
    return "\n".join(lines) + "\n"


def write_finetune_report(reports_dir: Path, summary: dict[str, Any]) -> Path:
    return write_report(reports_dir, STAGE, summary, markdown(summary))
