"""`docs-assistant env ...`, `deploy`, `rollback` and `drift`: environments as code and their roll-outs.

The commands live next to the deploy stage they drive, so changing a stage changes one folder; `cli.py`
only registers `env_app` and the three commands. The Docker SDK, kubernetes rendering and rich tables are
imported inside the command bodies, so `docs-assistant --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from docs_assistant.commands import EnvDir, _settings, _styled, _table_console, console, friendly_errors
from docs_assistant.config import Settings

EnvName = Annotated[str, typer.Argument(help="environment name: deploy/environments/<env>.toml")]
EnvironmentsDir = Annotated[Path, typer.Option("--dir", help="the environments directory")]

env_app = typer.Typer(
    help="Environments as code: deploy/environments/<env>.toml, promoted dev -> staging -> prod.",
    no_args_is_help=True,
)


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
    _table_console().print(table)


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
    feedback: Annotated[
        bool, typer.Option("--feedback", help="also delete the feedback volume (export it first: env feedback)")
    ] = False,
    directory: EnvDir = Path("deploy/environments"),
) -> None:
    """Remove an environment's app, proxy, the secrets the deploy made and its network; again: nothing left, exit 0."""
    from docs_assistant.deploy.teardown import run_down

    result = run_down(name, every=every, images=images, leave_swarm=leave_swarm, feedback=feedback, directory=directory)
    for line in result.lines:
        typer.echo(line)


@env_app.command("feedback")
@friendly_errors
def env_feedback(
    name: Annotated[str, typer.Argument(help="the environment (its file's stem)")],
    out: Annotated[
        Path | None, typer.Option(help="where the files go (default: <paths.data_dir>/feedback, which validate reads)")
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(help="an image to read the volume through (default: the app's, else one of ours; never started)"),
    ] = None,
    directory: EnvDir = Path("deploy/environments"),
) -> None:
    """Copy the feedback a deployed environment collected into data/feedback/, for validate to ingest."""
    from docs_assistant.deploy.environments import load_environment
    from docs_assistant.deploy.feedback import export_feedback

    target = out if out is not None else _settings().paths.data_dir / "feedback"
    exported = export_feedback(load_environment(name, directory), target, image=image, directory=directory)
    for item in exported:
        typer.echo(f"env feedback {name}: {item.path}: {item.rows} rows")
    rows = sum(item.rows for item in exported)
    if rows:
        typer.echo(
            f"env feedback {name}: {rows} rows in {len(exported)} files; `nox -s validate_data` ingests new ones"
        )
    else:
        typer.echo(f"env feedback {name}: no feedback yet")


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


def _deploy_outcome(line: str, ok: bool, out: Path | None) -> None:
    style = "green" if ok else "bold red"
    _styled(line, style)
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


@friendly_errors
def deploy(
    env: EnvName = "dev",
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
    directory: EnvironmentsDir = Path("deploy/environments"),
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
    from_manifest = image is None
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
        _styled(f"deploy {step.line()}", style)
        if step.deploy is not None:
            write_step_report(step, reports_dir)
    failed = [step for step in steps if step.state == "failed"]
    if failed:
        raise promotion_failure(failed[0], directory, reports_dir, swarm.APP)
    waiting = [step for step in steps if step.state == "awaiting_approval"]
    if waiting:
        command = approval_command(waiting[0].environment, None if from_manifest else image)
        console.print(f"approve with: {command}", highlight=False, soft_wrap=True)


def approval_command(env: str, image: str | None) -> str:
    """What to run to approve: the nox session when the manifest names the image (as the README says), else the CLI."""
    if image is None:
        return f"./noxw -s deploy -- {env} --promote --approve"
    return f"docs-assistant deploy {env} --image {image} --promote --approve"


@friendly_errors
def rollback(
    env: EnvName,
    directory: EnvironmentsDir = Path("deploy/environments"),
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


@friendly_errors
def drift(
    env: EnvName,
    image: Annotated[str | None, typer.Option(help="the image that should run, e.g. the manifest's digest")] = None,
    directory: EnvironmentsDir = Path("deploy/environments"),
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
