"""What a deploy leaves behind for people: `reports/deploy/<env>/summary.{json,md}` and the failure message.

The CLI prints these; CI appends the Markdown to the job summary. One module, so a roll-out, a gated
promotion step and a rollback are reported alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from docs_assistant.errors import DeployFailedError
from docs_assistant.loadtest.inputs import report_dir
from docs_assistant.reports import markdown_table, write_report

if TYPE_CHECKING:
    from docs_assistant.deploy.promote import Step
    from docs_assistant.deploy.swarm import DeployResult

STAGE = "deploy"


def write_result_report(result: DeployResult, reports_dir: Path) -> Path:
    """A roll-out or a rollback by itself (no gate): every field of the swarm's result."""
    summary = result.as_dict()
    rows = [(key, "" if value is None else value) for key, value in summary.items()]
    markdown = f"## Deploy to {result.environment}: {result.state}\n\n" + markdown_table(["", ""], rows) + "\n"
    return write_report(reports_dir / STAGE, result.environment, summary, markdown)


def write_step_report(step: Step, reports_dir: Path) -> Path:
    """One promotion step: the roll-out, the gate's verdict and any rollback."""
    gate = step.gate or {}
    deployed = step.deploy or {}
    rows = [
        ("image", step.image),
        ("roll-out", f"{deployed.get('state')}: {deployed.get('message')}"),
        ("startup", f"{deployed['startup_s']} s" if deployed.get("startup_s") is not None else "not measured"),
        ("gate", "passed" if gate.get("passed") else f"failed: {', '.join(gate.get('failed', []))}"),
        ("rolled back to", (step.rollback or {}).get("image") or ""),
    ]
    markdown = f"## Deploy to {step.environment}: {step.state}\n\n" + markdown_table(["", ""], rows) + "\n"
    return write_report(reports_dir / STAGE, step.environment, step.as_dict(), markdown)


def promotion_failure(step: Step, directory: Path, reports_dir: Path, app_service: str) -> DeployFailedError:
    """The error for a failed step: why the gate failed, what the environment runs now, where to look."""
    gate = step.gate or {}
    kept = (step.rollback or {}).get("image") or (step.deploy or {}).get("previous_image")
    if step.rollback and step.rollback.get("state") != "rolled_back":
        kept = f"what the failed rollback left ({step.rollback.get('message')})"
    reason = "; ".join(filter(None, [gate.get("reason"), ", ".join(gate.get("failed", []))]))
    runs = kept or f"{step.image} (it had no image before to roll back to)"
    return DeployFailedError(
        f"{step.environment}: promotion stopped: {reason}",
        where=directory / f"{step.environment}.toml",
        hint=f"{step.environment} runs {runs}; reports in {report_dir(reports_dir, step.environment)}/ and "
        f"`docker service ps {app_service}-{step.environment} --no-trunc`",
    )
