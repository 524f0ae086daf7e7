"""`docs-assistant image build|push`: the container image a release pins, by digest.

The commands live next to the stage they drive (`release.image`), so changing a stage changes one folder;
`cli.py` only registers `image_app`. Heavy imports (the Docker SDK) stay inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from docs_assistant.commands import _echo, _settings, console, friendly_errors

image_app = typer.Typer(help="The container image: build it once, push it, name it by digest.", no_args_is_help=True)

Version = Annotated[
    str | None, typer.Option(help="the version tag (default: the release manifest's, else pyproject's)")
]


@image_app.command("build")
@friendly_errors
def image_build(
    push: Annotated[
        bool | None,
        typer.Option("--push/--no-push", help="push and pull back by digest (default: when image.registry is set)"),
    ] = None,
    version: Version = None,
) -> None:
    """Stage the model, adapter and index, build the image with the Docker SDK, and push it."""
    from docs_assistant.release.image import run_build_image

    built, report = run_build_image(_settings(), Path.cwd(), version=version, push_image=push, progress=_echo)
    console.print(f"image: {built.reference or built.tags[0]} ({built.size / 1e6:.0f} MB); report in {report}")


@image_app.command("push")
@friendly_errors
def image_push(version: Version = None) -> None:
    """Push an image built before (found by its version and git SHA tags) and pull it back by digest."""
    from docs_assistant.release.image import run_push_image

    built = run_push_image(_settings(), Path.cwd(), version=version, progress=_echo)
    console.print(f"image: {built.reference}")
