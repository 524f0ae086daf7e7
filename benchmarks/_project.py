"""A throwaway copy of the project (data/ and prompts/) so benchmarks never touch the checkout's state."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "DOCS_ASSISTANT_"
# Kept out of the benchmarked runs: user settings would change what is measured, and every stage appends
# its report to the step summary, which the suite writes once with its own results instead.
SCRUBBED = ("GITHUB_STEP_SUMMARY",)


def clean_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment benchmarked code runs with: defaults only, offline, no library chatter."""
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith(ENV_PREFIX) and k not in SCRUBBED}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        LANCE_LOG="error",
        LANCEDB_LOG="error",
    )
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    return env


@contextlib.contextmanager
def scratch_project(prefix: str) -> Iterator[Path]:
    """Copy data/ and prompts/ into a temp dir, chdir there with a clean environment; undo it all on exit.

    Settings resolve relative paths against the working directory, so defaults then point at the copy.
    """
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    with tempfile.TemporaryDirectory(prefix=f"docs-assistant-bench-{prefix}-") as tmp:
        root = Path(tmp)
        for name in ("data", "prompts"):
            shutil.copytree(ROOT / name, root / name)
        os.environ.clear()
        os.environ.update(clean_env(saved_env))
        os.chdir(root)
        try:
            yield root
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
