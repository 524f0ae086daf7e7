"""`docs-assistant <stage>`: one subcommand per pipeline stage.

Errors a user can fix print one line per problem (file, row, field or setting) and exit with status 2;
a failed gate exits with status 1.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from docs_assistant.config import Settings, load_settings, with_json_overrides
from docs_assistant.errors import DocsAssistantError
from docs_assistant.preflight import WITHOUT_DOCKER, check

app = typer.Typer(help="Docs Assistant: a RAG service and its LLMOps pipeline.", no_args_is_help=True)
console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DocsAssistantError as exc:
            for line in str(exc).splitlines():
                console.print(f"[bold red]error:[/] {line}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def _echo(message: str) -> None:
    """A stage's progress line, as it is: no Rich markup or highlighting applied to paths and logs."""
    console.print(message, highlight=False, markup=False, soft_wrap=True)


def _settings() -> Settings:
    _quiet_libraries()
    return load_settings()


def _quiet_libraries() -> None:
    """Keep library progress bars and chatter out of the CLI's output; our own progress bars stay."""
    import logging
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("LANCE_LOG", "error")
    os.environ.setdefault("LANCEDB_LOG", "error")  # lancedb's Rust core reads this one
    logging.getLogger("llama_index").setLevel(logging.ERROR)


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
        console.print(f"[bold red]error:[/] {failure.error()}", highlight=False, soft_wrap=True)
    if reasons := gate_reasons(result, summary):
        console.print(
            f"[bold red]gate failed:[/] {'; '.join(reasons)}; nothing was ingested", highlight=False, soft_wrap=True
        )
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
        console.print(f"[bold red]gate failed:[/] hit@{k} {quality.hit_at_k:.3f} < {min_hit}")
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
        console.print(f"[bold red]preflight:[/] {problem.line()}", highlight=False, soft_wrap=True)
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
        progress=lambda msg: console.print(f"eval: {msg}", highlight=False),
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
            console.print(f"[bold red]gate failed:[/] {failure.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


#: fine-tuning is optional: a project rendered with `include_finetuning=no` has no `train` subpackage, and
#: then has no `finetune` or `registry retrain-due` command (serving and evals still use the registry)
FINETUNING = importlib.util.find_spec("docs_assistant.train") is not None


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
    result = run_finetune(settings, progress=lambda msg: console.print(f"finetune: {msg}", highlight=False))
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
        console.print("[bold red]gate failed:[/] the adapter does not beat the base model", highlight=False)
        raise typer.Exit(1)


@app.command()
@friendly_errors
def release(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="compute the next version and write the manifest; commit and tag nothing")
    ] = False,
) -> None:
    """Bump the version from conventional commits, update the changelog, tag, and write the release manifest."""
    from docs_assistant.release import run_release

    result = run_release(
        _settings(), dry_run=dry_run, progress=lambda msg: console.print(f"release: {msg}", highlight=False)
    )
    m = result.manifest
    if m["tagged"]:
        done = f"tagged {m['tag']} on {m['git_sha'][:12]} ({m['previous_version']} -> {m['version']})"
    elif m["bumped"]:
        done = f"dry run: next version {m['version']} (tag {m['tag']}); nothing committed or tagged"
    else:
        done = f"dry run: nothing to bump; the version stays {m['version']}"
    console.print(f"release: {done}; manifest in {result.manifest_path}", highlight=False, soft_wrap=True)


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


image_app = typer.Typer(help="The container image: build it once, push it, name it by digest.", no_args_is_help=True)
app.add_typer(image_app, name="image")


@image_app.command("build")
@friendly_errors
def image_build(
    push: Annotated[
        bool | None,
        typer.Option("--push/--no-push", help="push and pull back by digest (default: when image.registry is set)"),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="the version tag (default: the release manifest's, else pyproject's)")
    ] = None,
) -> None:
    """Stage the model, adapter and index, build the image with the Docker SDK, and push it."""
    from docs_assistant.release.image import run_build_image

    built, report = run_build_image(_settings(), Path.cwd(), version=version, push_image=push, progress=_echo)
    console.print(f"image: {built.reference or built.tags[0]} ({built.size / 1e6:.0f} MB); report in {report}")


@image_app.command("push")
@friendly_errors
def image_push(
    version: Annotated[
        str | None, typer.Option(help="the version tag (default: the release manifest's, else pyproject's)")
    ] = None,
) -> None:
    """Push an image built before (found by its version and git SHA tags) and pull it back by digest."""
    from docs_assistant.release.image import run_push_image

    built = run_push_image(_settings(), Path.cwd(), version=version, progress=_echo)
    console.print(f"image: {built.reference}")


registry_app = typer.Typer(
    help="The model registry (MLflow): adapter versions and their aliases.", no_args_is_help=True
)
app.add_typer(registry_app, name="registry")


def _key_metrics(settings: Settings, metrics: dict[str, float]) -> str:
    """The training loss and the metrics promotion is decided on (finetune.promote_on), as 'name=value'."""
    wanted = ["train_loss", *settings.finetune.promote_on]
    shown = [k for k in sorted(metrics) if any(k == w or k.endswith(w) for w in wanted)]
    return ", ".join(f"{k}={metrics[k]:.4g}" for k in shown)


@registry_app.command("list")
@friendly_errors
def registry_list(as_json: Annotated[bool, typer.Option("--json", help="print the versions as JSON")] = False) -> None:
    """Registered adapter versions with their aliases, adapter hash and key metrics."""
    from rich.table import Table

    from docs_assistant.registry import ModelRegistry

    settings = _settings()
    registry = ModelRegistry(settings)
    versions = registry.versions()
    if as_json:
        typer.echo(json.dumps([v.as_dict() for v in versions], indent=2))
        return
    if not versions:
        console.print(f"no versions of {registry.name!r} yet (registry at {registry.backend.tracking_uri})")
        return
    table = Table(title=f"{registry.name} ({registry.backend.tracking_uri})")
    for column in ("version", "aliases", "adapter hash", "run", "base model", "key metrics"):
        table.add_column(column, overflow="fold")
    for v in reversed(versions):
        base = v.tags.get("base_model", "")
        table.add_row(
            str(v.version),
            ", ".join(v.aliases),
            v.adapter_hash[:12],
            v.run_id[:8],
            base,
            _key_metrics(settings, v.metrics),
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)  # piped: no folded hashes


@registry_app.command("show")
@friendly_errors
def registry_show(
    ref: Annotated[str, typer.Argument(help="a version number or an alias (candidate, champion)")],
) -> None:
    """One version as JSON: run, adapter hash, aliases, lineage tags and metrics."""
    from docs_assistant.registry import ModelRegistry

    registry = ModelRegistry(_settings())
    info = registry.get(ref)
    if info is None:
        raise registry.unknown(ref, where=f"argument {ref!r}")
    typer.echo(json.dumps(info.as_dict(), indent=2))


@registry_app.command("promote")
@friendly_errors
def registry_promote(
    version: Annotated[int, typer.Argument(help="the version the alias moves to")],
    alias: Annotated[str, typer.Option(help="the alias to move")] = "champion",
) -> None:
    """Move an alias (default: champion) to a version; prints where it pointed before."""
    from docs_assistant.registry import ModelRegistry

    registry = ModelRegistry(_settings())
    before = registry.get(alias)
    registry.set_alias(alias, version)
    old = f"v{before.version}" if before is not None else "(unset)"
    typer.echo(f"{registry.name} {alias}: {old} -> v{version}")


@registry_app.command("fetch")
@friendly_errors
def registry_fetch(
    ref: Annotated[str, typer.Argument(help="a version number or an alias")],
    dest: Annotated[Path, typer.Option(help="where the adapter goes (absent or empty)")],
) -> None:
    """Download a version's adapter and verify its hash against the one registered (exit 2 on a mismatch)."""
    from docs_assistant.registry import ModelRegistry

    registry = ModelRegistry(_settings())
    info = registry.get(ref)
    if info is None:
        raise registry.unknown(ref, where=f"argument {ref!r}")
    path = registry.fetch(info, dest)
    typer.echo(f"{registry.name} v{info.version} -> {path} (adapter hash {info.adapter_hash}, verified)")


@friendly_errors
def retrain_due() -> None:
    """Print whether enough new usable feedback arrived since the champion's training (JSON; `due=` to $GITHUB_OUTPUT)."""
    import os

    from docs_assistant.train.trigger import retrain_due as check

    result = check(_settings())
    typer.echo(json.dumps(result))
    if os.environ.get("GITHUB_OUTPUT"):
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
            out.write(f"due={str(result['due']).lower()}\n")


if FINETUNING:
    app.command()(finetune)
    registry_app.command("retrain-due")(retrain_due)


env_app = typer.Typer(
    help="Environments as code: deploy/environments/<env>.toml, promoted dev -> staging -> prod.",
    no_args_is_help=True,
)
app.add_typer(env_app, name="env")
EnvDir = Annotated[Path, typer.Option("--dir", help="the folder of environment files")]


@env_app.command("list")
@friendly_errors
def env_list(
    directory: EnvDir = Path("deploy/environments"),
    as_json: Annotated[bool, typer.Option("--json", help="print the environments as JSON")] = False,
) -> None:
    """Every environment in promotion order, after checking the whole set (ports, promotes_to, cycles)."""
    from rich.table import Table

    from docs_assistant.deploy.environments import as_dict, in_promotion_order, load_environments

    environments = load_environments(directory)
    order = in_promotion_order(environments)
    if as_json:
        typer.echo(json.dumps([as_dict(environments[name]) for name in order], indent=2))
        return
    table = Table(title=str(directory))
    for column in ("name", "target", "replicas", "bind", "port", "approval", "promotes to"):
        table.add_column(column)
    for name in order:
        env = environments[name]
        approval = "required" if env.approval else "no"
        table.add_row(name, env.target, str(env.replicas), env.bind, str(env.port), approval, env.promotes_to or "-")
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@env_app.command("show")
@friendly_errors
def env_show(
    name: Annotated[str, typer.Argument(help="the environment (its file's stem)")],
    directory: EnvDir = Path("deploy/environments"),
) -> None:
    """One environment as JSON, as validated (defaults filled in)."""
    from docs_assistant.deploy.environments import as_dict, load_environment

    typer.echo(json.dumps(as_dict(load_environment(name, directory)), indent=2))


@env_app.command("new")
@friendly_errors
def env_new(
    name: Annotated[str, typer.Argument(help="the new environment's name, e.g. uat")],
    from_: Annotated[str, typer.Option("--from", help="the environment whose file is copied")],
    directory: EnvDir = Path("deploy/environments"),
) -> None:
    """Copy an environment's file (comments kept) with a free port, promoting nowhere until you edit it."""
    from docs_assistant.deploy.environments import load_environment, new_environment

    path = new_environment(name, from_, directory)
    env = load_environment(name, directory)
    typer.echo(f"{path}: {name} from {from_}, port {env.port}; set promotes_to (and point an environment at it)")


@env_app.command("down")
@friendly_errors
def env_down(
    name: Annotated[str | None, typer.Argument(help="the environment to remove (its file's stem); or --all")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="every environment in --dir, the last of the chain first")
    ] = False,
    images: Annotated[
        bool, typer.Option("--images", help="also remove the images its services ran (the proxy's only if ours)")
    ] = False,
    leave_swarm: Annotated[
        bool, typer.Option("--leave-swarm", help="then leave swarm mode, if nothing else lives in the swarm")
    ] = False,
    directory: EnvDir = Path("deploy/environments"),
) -> None:
    """Remove an environment's app, proxy, the secrets the deploy made and its network; again: nothing left, exit 0."""
    from docs_assistant.deploy.teardown import run_down

    result = run_down(name, every=every, images=images, leave_swarm=leave_swarm, directory=directory)
    for line in result.lines:
        typer.echo(line)


@env_app.command("kubernetes")
@friendly_errors
def env_kubernetes(
    directory: EnvDir = Path("deploy/environments"),
    out: Annotated[Path, typer.Option("--out", help="the kustomize folder: base/ and overlays/<env>/")] = Path(
        "deploy/kubernetes"
    ),
    check_only: Annotated[
        bool, typer.Option("--check", help="write nothing; exit 1 listing the files that differ from a fresh render")
    ] = False,
) -> None:
    """Render the Kubernetes base and one overlay per environment file (every target, so switching is one key)."""
    from docs_assistant.deploy.environments import load_environments
    from docs_assistant.deploy.kubernetes import check, render, write

    rendered = render(load_environments(directory), directory)
    if check_only:
        drift = check(rendered, out)
        for rel in drift:
            typer.echo(f"{out / rel}: differs from a fresh render")
        if drift:
            typer.echo("run `docs-assistant env kubernetes` and commit the result")
            raise typer.Exit(1)
        typer.echo(f"{out}: {len(rendered)} files up to date")
        return
    changed = write(rendered, out)
    for rel in changed:
        typer.echo(f"{out / rel}: {'written' if rel in rendered else 'removed (stale)'}")
    typer.echo(f"{out}: {len(rendered)} files, {len(changed)} changed")


@app.command()
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
        console.print(f"[{style}]{objective.describe()}[/]", highlight=False, soft_wrap=True)
    console.print(
        f"loadtest: {measured.requests} requests measured, {measured.failures} failed, "
        f"{measured.unfinished} unfinished; report in {out_dir}",
        highlight=False,
        soft_wrap=True,
    )
    if not summary["passed"]:
        console.print(f"[bold red]gate failed:[/] {', '.join(summary['failed'])}", highlight=False)
        raise typer.Exit(1)


def _deploy_outcome(line: str, ok: bool, out: Path | None) -> None:
    style = "green" if ok else "bold red"
    console.print(f"[{style}]{line}[/]", highlight=False, soft_wrap=True)
    if out is not None:
        console.print(f"report in {out}", highlight=False)


def _manifest_image(settings: Settings, manifest: Path | None) -> tuple[str, Path | None]:
    """The image the release manifest pins (its registry reference, else the local image ID) and the manifest."""
    from docs_assistant.errors import ConfigError
    from docs_assistant.release.manifest import load_manifest, manifest_path

    path = manifest or manifest_path(settings.paths.reports_dir)
    image = (load_manifest(path).get("image") or {}) if path.is_file() or manifest else {}
    ref = image.get("reference") or image.get("id")
    if not ref:
        raise ConfigError(
            "no image to deploy: --image is not given and the release manifest pins none",
            where=path,
            hint="build one (`nox -s build_image`), or pass --image registry/repo@sha256:...",
        )
    return ref, path


@app.command()
@friendly_errors
def deploy(
    env: Annotated[str, typer.Argument(help="environment name: deploy/environments/<env>.toml")] = "dev",
    image: Annotated[
        str | None,
        typer.Option(help="the image, by digest: registry/repo@sha256:... (default: the release manifest's)"),
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="go on along promotes_to after each passed gate (to the end or --to)")
    ] = False,
    to: Annotated[str | None, typer.Option("--to", help="the last environment to promote to")] = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="deploy to environments with approval = true (you approve them)")
    ] = False,
    gate: Annotated[bool, typer.Option("--gate/--no-gate", help="load-test gate after each roll-out")] = True,
    directory: Annotated[Path, typer.Option("--dir", help="the environments directory")] = Path("deploy/environments"),
    proxy_image: Annotated[
        str | None, typer.Option(help="image of the front proxy (default: the app image runs the proxy module)")
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(help="release manifest that pins the image and records deploys.<env>, gates.<env>"),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="LOADTEST_API_KEY", help="bearer key the gate sends (outside dev)")
    ] = None,
) -> None:
    """Roll an image out to a Docker swarm environment and gate it; a failed gate rolls back and exits 1."""
    from docs_assistant.deploy import swarm
    from docs_assistant.deploy.environments import load_environment, load_environments
    from docs_assistant.deploy.promote import deploy_ungated
    from docs_assistant.deploy.promote import promote as run_promotion
    from docs_assistant.deploy.report import promotion_failure, write_result_report, write_step_report
    from docs_assistant.errors import DeployFailedError

    settings = _settings()
    reports_dir = settings.paths.reports_dir
    if image is None:
        image, manifest = _manifest_image(settings, manifest)
    environments = load_environments(directory)
    environment = environments.get(env) or load_environment(env, directory)  # the latter names a missing file
    if not gate:
        result = deploy_ungated(
            environment,
            image,
            promoting=bool(promote or to),
            approved=approve,
            directory=directory,
            manifest=manifest,
            proxy_image=proxy_image,
        )
        _deploy_outcome(result.line(), result.state == "deployed", write_result_report(result, reports_dir))
        if result.state != "deployed":
            raise DeployFailedError(f"{result.state}: {result.message}", where=directory / f"{env}.toml")
        return
    steps = run_promotion(
        image,
        environments,
        start=env,
        stop=to if promote else env,
        approved=approve,
        directory=directory,
        reports_dir=reports_dir,
        manifest=manifest,
        api_key=api_key,
        proxy_image=proxy_image,
    )
    for step in steps:
        style = {"passed": "green", "failed": "bold red", "awaiting_approval": "yellow"}[step.state]
        console.print(f"[{style}]deploy {step.line()}[/]", highlight=False, soft_wrap=True)
        if step.deploy is not None:
            write_step_report(step, reports_dir)
    failed = [step for step in steps if step.state == "failed"]
    if failed:
        raise promotion_failure(failed[0], directory, reports_dir, swarm.APP)
    waiting = [step for step in steps if step.state == "awaiting_approval"]
    if waiting:
        console.print(
            f"approve with: docs-assistant deploy {waiting[0].environment} --image {image} --promote --approve",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
@friendly_errors
def rollback(
    env: Annotated[str, typer.Argument(help="environment name: deploy/environments/<env>.toml")],
    directory: Annotated[Path, typer.Option("--dir", help="the environments directory")] = Path("deploy/environments"),
) -> None:
    """Roll a Docker swarm environment back to the image it ran before its last deploy."""
    from docs_assistant.deploy import swarm
    from docs_assistant.deploy.environments import load_environment
    from docs_assistant.errors import DeployFailedError

    settings = _settings()
    environment = load_environment(env, directory)
    result = swarm.rollback(environment, directory=directory)
    from docs_assistant.deploy.report import write_result_report

    _deploy_outcome(
        result.line(), result.state == "rolled_back", write_result_report(result, settings.paths.reports_dir)
    )
    if result.state != "rolled_back":
        raise DeployFailedError(f"rollback {result.state}: {result.message}", where=directory / f"{env}.toml")


@app.command()
@friendly_errors
def drift(
    env: Annotated[str, typer.Argument(help="environment name: deploy/environments/<env>.toml")],
    image: Annotated[str | None, typer.Option(help="the image that should run, e.g. the manifest's digest")] = None,
    directory: Annotated[Path, typer.Option("--dir", help="the environments directory")] = Path("deploy/environments"),
) -> None:
    """Compare a live Docker swarm environment with its file (and --image); exit 1 listing the differences."""
    from docs_assistant.deploy import swarm
    from docs_assistant.deploy.environments import load_environment

    environment = load_environment(env, directory)
    swarm.check_target(environment, directory)
    differences = swarm.drift(environment, image=image)
    for line in differences:
        typer.echo(f"drift {env}: {line}")
    if differences:
        raise typer.Exit(1)
    typer.echo(f"drift {env}: none")


def main() -> None:  # pragma: no cover - console-script entry
    sys.exit(app())


if __name__ == "__main__":  # `python -m docs_assistant.cli`, which `accelerate launch -m` runs
    main()
