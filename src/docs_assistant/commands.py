"""What every `docs-assistant` command shares: the console, error reporting, progress lines and settings.

The commands live next to their stages (`deploy/commands.py`, `registry/commands.py`, ...) and `cli.py`
registers them; they all import this module and never `cli.py`, so there is no import cycle. It holds no
typer app and imports nothing heavy: `docs-assistant --help` stays fast.

Errors a user can fix print one line per problem (file, row, field or setting) and exit with status 2;
a failed gate exits with status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from docs_assistant.config import Settings, load_settings
from docs_assistant.errors import DocsAssistantError

console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

EnvDir = Annotated[Path, typer.Option("--dir", help="the folder of environment files")]


def friendly_errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DocsAssistantError as exc:
            for line in str(exc).splitlines():
                _flag("error:", line)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def _echo(message: str) -> None:
    """A stage's progress line, as it is: no Rich markup or highlighting applied to paths and logs."""
    console.print(message, highlight=False, markup=False, soft_wrap=True)


def _flag(label: str, message: object, style: str = "bold red") -> None:
    """A styled label, then the message as it is: a message's own brackets ("[secrets]", a path) are text, not
    Rich markup that would swallow them."""
    console.print(Text.assemble((label, style), " ", str(message)), highlight=False, soft_wrap=True)


def _styled(line: str, style: str) -> None:
    """A whole line in one style, its brackets kept as text."""
    console.print(Text(line, style=style), highlight=False, soft_wrap=True)


def _table_console() -> Console:
    """Where tables go: stdout, wide when piped so hashes and paths are not folded."""
    return Console(width=None if sys.stdout.isatty() else 200)


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
