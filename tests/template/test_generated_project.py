"""Does it work: a project generated with custom answers passes its own `nox -s lint tests`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ZETA, render

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(1800)  # the generated project's whole non-e2e suite, from a cold venv
def test_generated_project_passes_its_own_lint_and_tests(template_repo: Path, tmp_path: Path) -> None:
    project = render(template_repo, tmp_path, **ZETA)
    nox = shutil.which("nox")
    assert nox, "nox must be installed in the test environment (dependency group 'test')"
    assert shutil.which("uv"), "uv must be on PATH (./noxw puts it there)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCS_ASSISTANT_", "VIRTUAL_ENV", "UV_PROJECT"))}
    # Its e2e layer re-runs the whole pipeline twice and its training tests train adapters for minutes; this
    # repository's own run already does both on the same code.
    for session, posargs in (("lint", []), ("tests", ["-m", "not e2e and not training and not docker", "-q"])):
        proc = subprocess.run(
            [nox, "-s", session, "--no-color", "--", *posargs],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-6000:]
        assert f"Session {session} was successful" in output
    assert " passed" in proc.stdout
