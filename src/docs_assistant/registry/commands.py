"""`docs-assistant registry ...`: the model registry's adapter versions and their aliases, from the shell.

The commands live next to the registry they read, so changing it changes one folder; `cli.py` only
registers `registry_app`. mlflow is imported on first use of `ModelRegistry`, inside the command bodies.
`retrain-due` asks the `train` package, which a project without fine-tuning does not have: `cli.py`
registers it only when that package exists, and nothing here imports it at module level.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from docs_assistant.commands import _settings, _table_console, console, friendly_errors
from docs_assistant.config import Settings

registry_app = typer.Typer(
    help="The model registry (MLflow): adapter versions and their aliases.", no_args_is_help=True
)


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
    _table_console().print(table)


@registry_app.command("show")
@friendly_errors
def registry_show(
    ref: Annotated[str, typer.Argument(help="a version number or an alias (candidate, champion)")],
) -> None:
    """One version as JSON: run, adapter hash, aliases, lineage tags and metrics."""
    from docs_assistant.registry import ModelRegistry

    registry = ModelRegistry(_settings())
    info = registry.require(ref)
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
    info = registry.require(ref)
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
