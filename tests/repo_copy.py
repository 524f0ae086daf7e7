"""The one way tests copy this repository, and the one environment filter for the processes they start.

A copy holds what a clone would hold plus the new files not yet committed (tracked files and untracked
ones git does not ignore): no .venv, .nox, var/ or reports/, so each copy starts from recorded nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: outside a git checkout (an unpacked archive): everything but the state and build directories
STATE_AND_BUILD = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "var", "reports", "__pycache__", "*_cache", "*.egg-info"
)
#: what nox sets for the tests session (its virtual environment): a process the tests start must not install there
NOX_SESSION_VARIABLES = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "CONDA_PREFIX")
#: what the test run itself set and a started `nox` or stage must not inherit
RUN_ONLY_VARIABLES = ("DOCS_ASSISTANT_", *NOX_SESSION_VARIABLES)


def copy_repo(target: Path, source: Path = REPO) -> Path:
    """Copy `source` to `target` (created) as a clone plus new files would have it; returns `target`."""
    listing = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=source, capture_output=True, check=False
    )
    if listing.returncode != 0:
        return Path(shutil.copytree(source, target, ignore=STATE_AND_BUILD))
    target.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, listing.stdout.decode().split("\0")):
        if (source / rel).is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, target / rel)
    return target


def clean_env() -> dict[str, str]:
    """This process's environment without the test run's own settings and virtual environment."""
    return {k: v for k, v in os.environ.items() if not k.startswith(RUN_ONLY_VARIABLES)}
