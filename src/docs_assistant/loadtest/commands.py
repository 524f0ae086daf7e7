"""`docs-assistant loadtest`: locust against a deployed service, gated on its environment's SLOs.

The command lives next to the load-test stage it drives, so changing the stage changes one folder;
`cli.py` only registers it (and `deploy` runs it as `python -m docs_assistant.cli loadtest`). locust is
imported inside the command body: it monkey-patches with gevent, and `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from docs_assistant.commands import _flag, _settings, _styled, console, friendly_errors


@friendly_errors
def loadtest(
    url: Annotated[
        str | None,
        typer.Option(help="the service's base URL (default: loopback, setting serve.port)", show_default=False),
    ] = None,
    gate_file: Annotated[
        Path | None,
        typer.Option(help="TOML file whose gate table holds the SLOs, e.g. deploy/environments/staging.toml"),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            help="environment name: its file's gate applies (unless --gate-file), the report goes to reports/loadtest/<env>/",
        ),
    ] = None,
    startup_s: Annotated[
        float | None, typer.Option(help="start-up time the deployer measured, seconds; unset: not checked")
    ] = None,
    questions: Annotated[
        Path | None, typer.Option(help="JSONL with a 'question' field (default: the eval set beside evals.config)")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="LOADTEST_API_KEY", help="bearer key for /v1 (outside dev)", show_default=False)
    ] = None,
    max_startup_s: Annotated[float | None, typer.Option(help="override the gate's max_startup_s")] = None,
    p50_ms: Annotated[float | None, typer.Option(help="override the gate's p50_ms")] = None,
    p95_ms: Annotated[float | None, typer.Option(help="override the gate's p95_ms")] = None,
    p99_ms: Annotated[float | None, typer.Option(help="override the gate's p99_ms")] = None,
    max_error_rate: Annotated[float | None, typer.Option(help="override the gate's max_error_rate")] = None,
    min_rps: Annotated[float | None, typer.Option(help="override the gate's min_rps")] = None,
    arrival_rate: Annotated[float | None, typer.Option(help="override the gate's arrival_rate, per second")] = None,
    duration_s: Annotated[float | None, typer.Option(help="override the gate's duration_s")] = None,
    warmup_s: Annotated[float | None, typer.Option(help="override the gate's warmup_s")] = None,
) -> None:
    """Load-test a deployed service with locust and gate on its environment's SLOs (exit 1 on a breach)."""
    from docs_assistant.loadtest.check import objectives, summary_of, write_summary
    from docs_assistant.loadtest.inputs import plan_load_test

    settings = _settings()
    overrides = {
        "max_startup_s": max_startup_s,
        "p50_ms": p50_ms,
        "p95_ms": p95_ms,
        "p99_ms": p99_ms,
        "max_error_rate": max_error_rate,
        "min_rps": min_rps,
        "arrival_rate": arrival_rate,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
    }
    plan = plan_load_test(
        settings,
        url=url,
        gate_file=gate_file,
        environment=env,
        startup_s=startup_s,
        questions=questions,
        overrides=overrides,
    )
    gate, url, out_dir = plan.gate, plan.url, plan.out_dir

    from docs_assistant.loadtest.run import run_load_test  # imports locust, which monkey-patches with gevent

    console.print(plan.describe(), highlight=False)
    measured = run_load_test(url, gate, plan.questions, out_dir, api_key=api_key, startup_s=plan.startup_s)
    summary = summary_of(gate, measured, url=url, environment=plan.environment)
    write_summary(settings.paths.reports_dir, summary)
    for objective in objectives(gate, measured):
        style = {True: "green", False: "bold red", None: "yellow"}[objective.passed]
        _styled(objective.describe(), style)
    console.print(
        f"loadtest: {measured.requests} requests measured, {measured.failures} failed, "
        f"{measured.unfinished} unfinished; report in {out_dir}",
        highlight=False,
        soft_wrap=True,
    )
    if not summary["passed"]:
        _flag("gate failed:", ", ".join(summary["failed"]))
        raise typer.Exit(1)
