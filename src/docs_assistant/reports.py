"""Every stage reports the same way: `reports/<stage>/summary.json` for machines, `summary.md` for people.

The Markdown is also appended to `$GITHUB_STEP_SUMMARY` when it is set, so a workflow shows it without
glue code of its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from docs_assistant.io import atomic_write_json, atomic_write_text


def write_report(reports_dir: Path, stage: str, summary: dict[str, Any], markdown: str) -> Path:
    out = reports_dir / stage
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", markdown)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")
    return out


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)
