"""The few git facts a release needs, each failure a ReleaseError that says what to do."""

from __future__ import annotations

import subprocess
from pathlib import Path

from docs_assistant.errors import ReleaseError


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except OSError as exc:
        raise ReleaseError(f"cannot run git: {exc}", hint="install git and put it on PATH") from None
    if check and result.returncode != 0:
        raise ReleaseError(f"`git {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()}", where=root)
    return result


def toplevel(root: Path) -> Path:
    """The repository's top directory; refuses a directory outside git or a repository without commits."""
    found = git(root, "rev-parse", "--show-toplevel", check=False)
    if found.returncode != 0:
        raise ReleaseError(
            "not a git repository: a release tags a commit",
            where=root,
            hint="run the release in a clone of the project (git clone), not in an exported copy",
        )
    top = Path(found.stdout.strip())
    if git(top, "rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0:
        raise ReleaseError("the repository has no commits yet", where=top, hint="commit the project first")
    return top


def dirty_paths(top: Path) -> list[str]:
    """Modified, staged, deleted and untracked (not ignored) paths, as `git status` names them."""
    out = git(top, "status", "--porcelain=v1", "-z", "--untracked-files=all").stdout
    paths, entries = [], iter(out.split("\0"))
    for entry in entries:
        if not entry:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":  # a rename or copy is followed by its source path
            next(entries, None)
    return paths


def head_sha(top: Path) -> str:
    return git(top, "rev-parse", "HEAD").stdout.strip()


def tag_exists(top: Path, tag: str) -> bool:
    return git(top, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}", check=False).returncode == 0


def tag_is_annotated(top: Path, tag: str) -> bool:
    return git(top, "cat-file", "-t", f"refs/tags/{tag}", check=False).stdout.strip() == "tag"


def tag_commit(top: Path, tag: str) -> str:
    return git(top, "rev-parse", f"refs/tags/{tag}^{{commit}}").stdout.strip()
