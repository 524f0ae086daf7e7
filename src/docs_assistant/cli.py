"""`docs-assistant <stage>`: one subcommand per pipeline stage.

This module holds the app, the commands of the stages that have no package of their own to hold them, and
the registration of the rest: `image` (release/commands.py), `registry` (registry/commands.py), `env`,
`deploy`, `rollback`, `drift` (deploy/commands.py) and `loadtest` (loadtest/commands.py) live next to the
stage they drive, so changing a stage's options changes one folder. What they share (console, errors,
settings) is in `docs_assistant.commands`, which never imports this module.

Errors a user can fix print one line per problem (file, row, field or setting) and exit with status 2;
a failed gate exits with status 1.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from docs_assistant.commands import _echo, _flag, _progress, _settings, console, friendly_errors
from docs_assistant.config import with_json_overrides
from docs_assistant.deploy.commands import deploy, drift, env_app, rollback
from docs_assistant.loadtest.commands import loadtest
from docs_assistant.preflight import WITHOUT_DOCKER, check
from docs_assistant.registry.commands import registry_app, retrain_due
from docs_assistant.release.commands import image_app

app = typer.Typer(help="Docs Assistant: a RAG service and its LLMOps pipeline.", no_args_is_help=True)

#: fine-tuning is optional: a project rendered with `include_finetuning=no` has no `train` subpackage, and
#: then has no `finetune` or `registry retrain-due` command (serving and evals still use the registry)
FINETUNING = importlib.util.find_spec("docs_assistant.train") is not None


@app.command()
@friendly_errors
def ingest() -> None:
    """Validate data/ and sync it into the LanceDB feature store (writes nothing when unchanged)."""
    from docs_assistant.data.corpus import load_corpus
    from docs_assistant.data.ingest import ingest as run_ingest

    settings = _settings()
    with _progress() as progress:
        task = progress.add_task("reading data/", total=None)
        corpus = load_corpus(settings.paths.data_dir, tuple(settings.validation.boilerplate_patterns))
        progress.update(task, total=1, completed=1)
    summary = run_ingest(settings, corpus)
    for name, change in summary["tables"].items():
        state = "changed" if change["changed"] else "unchanged"
        console.print(f"{name}: version {change['version']}, {change['rows']} rows ({state})")


@app.command()
@friendly_errors
def validate(
    data_dir: Annotated[
        Path | None, typer.Option(help="the data directory (default: setting paths.data_dir)", show_default=False)
    ] = None,
    thresholds: Annotated[
        str | None, typer.Option(help='JSON object overriding validation settings, e.g. {"max_invalid_share": 0.02}')
    ] = None,
) -> None:
    """Clean and validate data/, quarantine invalid rows, and ingest the valid ones if the gate passes."""
    from docs_assistant.data.validate import gate_reasons, run_validation, summary_of

    settings = _settings()
    if thresholds:
        settings = with_json_overrides(settings, "validation", thresholds, "--thresholds")
    result = run_validation(settings, data_dir)
    summary = summary_of(result)
    total = summary["counts"]["total"]
    console.print(
        f"validate: {total['in']} rows in, {total['valid']} valid, {total['quarantined']} quarantined "
        f"({summary['invalid_share']:.2%}, limit {summary['max_invalid_share']:.2%})"
    )
    for failure in result.failures()[:20]:
        _flag("error:", failure.error())
    if reasons := gate_reasons(result, summary):
        _flag("gate failed:", f"{'; '.join(reasons)}; nothing was ingested")
        raise typer.Exit(1)
    for name, version in sorted(result.table_versions.items()):
        console.print(f"{name}: version {version}")


@app.command()
@friendly_errors
def index() -> None:
    """Chunk and embed changed documents into the vector table (incremental)."""
    from docs_assistant.rag.index import build_index, report_index

    settings = _settings()
    with _progress() as progress:
        task = progress.add_task("embedding chunks", total=None)
        result = build_index(settings, progress=lambda done, total: progress.update(task, completed=done, total=total))
    report_index(settings, result)
    console.print(
        f"index: {result.chunks} chunks from {result.documents} documents; "
        f"re-embedded {result.documents_embedded} documents ({result.chunks_embedded} chunks), "
        f"removed {result.documents_removed}; table version {result.table_version}"
    )


@app.command()
@friendly_errors
def ask(
    question: Annotated[str | None, typer.Argument(help="the question ('-' reads stdin); omit with --sample")] = None,
    sample: Annotated[int, typer.Option(help="answer the first N eval questions instead")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print answers as JSON lines")] = False,
) -> None:
    """Answer a question (or a sample of eval questions) with sources."""
    from docs_assistant.data.store import QA, FeatureStore
    from docs_assistant.rag.pipeline import RagPipeline

    settings = _settings()
    if question is None and not sample:
        raise typer.BadParameter("give a question or --sample N")
    if question == "-":
        question = sys.stdin.read()
    questions = [question] if question is not None else []
    if sample:
        rows = FeatureStore(settings.paths.store_uri).read(QA).to_pylist()
        questions += [r["question"] for r in rows if r["split"] == "eval"][:sample]
    rag = RagPipeline(settings)
    for q in questions:
        answer = rag.answer(q)
        if as_json:
            typer.echo(json.dumps(answer.as_dict()))
            continue
        typer.echo(f"Q: {answer.question}\nA: {answer.text}")
        for i, source in enumerate(answer.sources, start=1):
            typer.echo(f"  [{i}] {source['title']} ({source['source']}) score={source['score']:.3f}")
        typer.echo(
            f"  prompt {answer.prompt['id']} v{answer.prompt['version']} ({answer.prompt['hash'][:12]}), "
            f"model {answer.model['name']}, {answer.timings_ms['total_ms']:.0f} ms\n"
        )


@app.command("retrieval-eval")
@friendly_errors
def retrieval_eval(
    split: Annotated[str, typer.Option(help="QA split to score")] = "eval",
    k: Annotated[int, typer.Option(help="documents considered per question")] = 5,
    min_hit: Annotated[float, typer.Option(help="fail (exit 1) below this hit@k")] = 0.8,
) -> None:
    """Score retrieval on the QA pairs (hit@k, MRR) and gate on hit@k."""
    from docs_assistant.rag.quality import run_retrieval_eval

    gate = run_retrieval_eval(_settings(), split, k, min_hit)
    quality = gate.quality
    console.print(f"{split}: hit@{k}={quality.hit_at_k:.3f} MRR={quality.mrr:.3f} over {quality.questions} questions")
    if not gate.passed:
        _flag("gate failed:", f"hit@{k} {quality.hit_at_k:.3f} < {min_hit}")
        raise typer.Exit(1)


@app.command()
@friendly_errors
def preflight(
    stages: Annotated[list[str], typer.Argument(help="the pipeline stages about to run (nox session names)")],
    without: Annotated[str, typer.Option(help="the command to suggest when Docker is missing")] = WITHOUT_DOCKER,
) -> None:
    """Check what the stages will need (Docker Engine, base image, swarm, free ports) before any of them runs."""
    problems = check(_settings(), stages, without=without)
    for problem in problems:
        _flag("preflight:", problem.line())
    if problems:
        raise typer.Exit(1)
    _echo(f"preflight: ready for {', '.join(stages)}")


@app.command("eval")
@friendly_errors
def eval_(
    suites: Annotated[str, typer.Option(help="comma-separated suites to run (default: all in the config)")] = "",
    variants: Annotated[str, typer.Option(help="comma-separated prompt-id@version (default: the config's)")] = "",
    baseline: Annotated[Path | None, typer.Option(help="stored results to compare against")] = None,
    update_baseline: Annotated[
        Path | None, typer.Option(help="also write this run's metrics here, as the next baseline")
    ] = None,
) -> None:
    """Evaluate prompt variants on the eval suites and gate on thresholds and the baseline (exit 1 on failure)."""
    from docs_assistant.evals import run_stage
    from docs_assistant.evals.gate import baseline_of
    from docs_assistant.io import atomic_write_json

    settings = _settings()
    result = run_stage(
        settings,
        suites=[s for s in suites.split(",") if s] or None,
        variants=[v for v in variants.split(",") if v] or None,
        baseline=baseline,
        progress=lambda msg: _echo(f"eval: {msg}"),
    )
    if update_baseline is not None:
        atomic_write_json(update_baseline, baseline_of(result.summary))
    cache = result.run.cache
    console.print(
        f"eval: {len(result.run.variants)} variant(s), cache {cache['hits']} hits / {cache['misses']} misses, "
        f"{result.run.seconds:.1f} s; report in {result.report_dir}"
    )
    if not result.passed:
        for failure in result.failures:
            _flag("gate failed:", failure.message)
        raise typer.Exit(1)


@friendly_errors
def finetune(
    overrides: Annotated[
        str | None, typer.Option(help='JSON object overriding finetune settings, e.g. {"max_steps": 20, "rank": 8}')
    ] = None,
) -> None:
    """LoRA-fine-tune the model on the train split and feedback, evaluate, register, promote if it wins."""
    from docs_assistant.train.finetune import run_finetune

    settings = _settings()
    if overrides:
        settings = with_json_overrides(settings, "finetune", overrides, "--overrides")
    result = run_finetune(settings, progress=lambda msg: _echo(f"finetune: {msg}"))
    if result is None:  # a worker process under `accelerate launch`; the main process reports
        return
    summary, m = result.summary, result.summary["train"]["metrics"]
    console.print(
        f"finetune: held-out loss {m['heldout_loss_base']:.3f} -> {m['heldout_loss']:.3f}, "
        f"{m['tokens_per_s']:.0f} tokens/s, MFU {m['mfu']:.2%}, {m['train_seconds']:.1f} s training",
        highlight=False,
    )
    registered = summary["registered"]
    state = "promoted to champion" if summary["promoted"] else "not promoted"
    console.print(
        f"finetune: {registered['name']} v{registered['version']} {state}: {summary['reason']}; "
        f"report in {result.report_dir}",
        highlight=False,
        soft_wrap=True,
    )
    if not result.passed:
        _flag("gate failed:", "the adapter does not beat the base model")
        raise typer.Exit(1)


if FINETUNING:
    app.command()(finetune)


@app.command()
@friendly_errors
def release(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="compute the next version and write the manifest; commit and tag nothing")
    ] = False,
) -> None:
    """Bump the version from conventional commits, update the changelog, tag, and write the release manifest."""
    from docs_assistant.release import run_release

    result = run_release(_settings(), dry_run=dry_run, progress=lambda msg: _echo(f"release: {msg}"))
    m = result.manifest
    if m["tagged"]:
        done = f"tagged {m['tag']} on {m['git_sha'][:12]} ({m['previous_version']} -> {m['version']})"
    elif m["bumped"]:
        done = f"dry run: next version {m['version']} (tag {m['tag']}); nothing committed or tagged"
    else:
        done = f"dry run: nothing to bump; the version stays {m['version']}"
    _echo(f"release: {done}; manifest in {result.manifest_path}")


@app.command()
@friendly_errors
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default: setting serve.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: setting serve.port)")] = None,
) -> None:
    """Run the model service (probes, metrics, /v1 API) with uvicorn; SIGTERM drains it."""
    from docs_assistant.serve.app import create_app
    from docs_assistant.serve.logs import configure_logging
    from docs_assistant.serve.server import serve as run_server

    settings = _settings()
    configure_logging()
    application = create_app(settings)
    run_server(
        application,
        settings,
        host=host or settings.serve.host,
        port=settings.serve.port if port is None else port,
    )


app.command()(loadtest)
app.command()(deploy)
app.command()(rollback)
app.command()(drift)
app.add_typer(image_app, name="image")
app.add_typer(registry_app, name="registry")
app.add_typer(env_app, name="env")
if FINETUNING:
    registry_app.command("retrain-due")(retrain_due)


def main() -> None:  # pragma: no cover - console-script entry
    sys.exit(app())


if __name__ == "__main__":  # `python -m docs_assistant.cli`, which `accelerate launch -m` runs
    main()
