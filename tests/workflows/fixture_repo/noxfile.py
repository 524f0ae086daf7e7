"""A caller of the reusable workflows that is not Docs Assistant: tiny, and its sessions install from PyPI."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"


def report(stage: str, markdown: str) -> None:
    out = Path("reports") / stage
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(markdown + "\n", encoding="utf-8")


@nox.session
def lint(session: nox.Session) -> None:
    """Byte-compile everything: a lint with no dependencies."""
    session.run("python", "-m", "compileall", "-q", "src", "tests")


@nox.session
def tests(session: nox.Session) -> None:
    """Pytest on the tiny package."""
    session.install("pytest")
    session.run("pytest", "-q", *session.posargs, env={"PYTHONPATH": "src"})
    report("tests", f"### fixture tests\n\npytest {' '.join(session.posargs)} passed")


@nox.session
def index(session: nox.Session) -> None:
    """Write a report and, like Docs Assistant's stages, append it to the step summary itself."""
    markdown = f"### fixture index, built on {os.environ.get('GITHUB_REF_NAME', 'a laptop')}"
    report("index", markdown)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as summary:
            summary.write(markdown + "\n")
