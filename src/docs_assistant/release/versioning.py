"""The next version from conventional commits, and the bump itself: commitizen's `cz` CLI does both.

Nothing here reads commit messages: commitizen decides the increment (`[tool.commitizen]` in
pyproject.toml), updates the version and the changelog, commits and tags. It runs as
`python -m commitizen` on this interpreter, so the release dependency group's commitizen is the one used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from docs_assistant.errors import ConfigError, ReleaseError

#: commitizen's exit codes (commitizen.exceptions.ExitCode) that mean "nothing to release"
NO_COMMITS_FOUND, NO_COMMITS_TO_BUMP = 3, 21
PREFIX_SETTING = "setting 'release.tag_prefix' (env DOCS_ASSISTANT_RELEASE__TAG_PREFIX)"


def _start(top: Path, *args: str) -> subprocess.Popen[str]:
    env = os.environ | {"NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "commitizen", *args],
            cwd=top,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    except OSError as exc:  # pragma: no cover - the interpreter itself is missing
        raise ReleaseError(f"cannot run commitizen: {exc}") from None


def _finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def cz(top: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _finish(_start(top, *args))


def _failed(result: subprocess.CompletedProcess[str], action: str, top: Path, hint: str | None = None) -> ReleaseError:
    text = (result.stderr.strip() or result.stdout.strip()).splitlines()
    if any("No module named commitizen" in line for line in text):
        return ReleaseError(
            "commitizen is not installed in this environment",
            hint="install the 'release' dependency group: uv sync --group release (nox -s release does)",
        )
    detail = " ".join(line.strip() for line in text[-3:])
    return ReleaseError(f"commitizen could not {action} (exit {result.returncode}): {detail}", where=top, hint=hint)


def check_config(top: Path, tag_prefix: str) -> dict:
    """`[tool.commitizen]` must exist and tag like `release.tag_prefix` does, or versions and tags drift apart."""
    pyproject = top / "pyproject.toml"
    where = f"{pyproject} [tool.commitizen]"
    wanted = f"{tag_prefix}$version"
    example = f'name = "cz_conventional_commits", version_provider = "pep621", tag_format = "{wanted}"'
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no pyproject.toml: commitizen reads its settings there", where=pyproject) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=pyproject) from None
    config = data.get("tool", {}).get("commitizen")
    if not isinstance(config, dict):
        raise ConfigError("missing: commitizen has no settings", where=where, hint=f"add a section with {example}")
    tag_format = config.get("tag_format", "$version")
    if tag_format.replace("${version}", "$version") != wanted:
        raise ConfigError(
            f"tag_format is {tag_format!r} but {PREFIX_SETTING} is {tag_prefix!r}, which tags as {wanted!r}",
            where=where,
            hint="make the two agree: tags are read and written by both",
        )
    return config


def versions(top: Path) -> tuple[str, str | None]:
    """The project's version, and the one the commits since its tag call for (None when none bumps it).

    The two `cz` runs go in parallel: each spends most of a second importing commitizen.
    """
    current_run, next_run = _start(top, "version", "--project"), _start(top, "bump", "--get-next", "--yes")
    current, upcoming = _finish(current_run), _finish(next_run)
    if current.returncode != 0:
        raise _failed(current, "read the project's version", top)
    if upcoming.returncode in (NO_COMMITS_FOUND, NO_COMMITS_TO_BUMP):
        return _last_line(current), None
    if upcoming.returncode != 0:
        raise _failed(upcoming, "work out the next version", top)
    return _last_line(current), _last_line(upcoming)


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stdout.strip().splitlines()
    return lines[-1].strip() if lines else ""


def bump(top: Path, changelog: Path) -> str:
    """Bump the version, update the changelog, commit (`bump: ...`) and create the annotated tag; cz's output."""
    result = cz(top, "bump", "--yes", "--changelog", "--annotated-tag", "--file-name", str(changelog))
    if result.returncode != 0:
        hint = "a git commit needs user.name and user.email (git config), and commit hooks must pass"
        raise _failed(result, "bump the version", top, hint)
    return result.stdout
