"""The release manifest, `reports/release/manifest.json`: what one release is, pinned.

The release stage writes it; later stages add to it with `update_manifest` (the image stage its
`image`, each deployment its entry under `gates`). A manifest belongs to one version and one commit:
an update that names another `version` or `git_sha` is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from docs_assistant.errors import ReleaseError
from docs_assistant.io import atomic_write_json

STAGE = "release"
#: fields that say which release a manifest is; updates may repeat them, never change them
IDENTITY = ("version", "git_sha")


def manifest_path(reports_dir: Path) -> Path:
    return reports_dir / STAGE / "manifest.json"


def load_manifest(path: Path) -> dict[str, Any]:
    """The manifest at `path`; a missing or unreadable one is a ReleaseError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError(
            "no release manifest", where=path, hint="run `docs-assistant release` (or `--dry-run`) first"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReleaseError(
            f"the release manifest is not valid JSON: {exc}", where=path, hint="run `docs-assistant release` again"
        ) from None
    if not isinstance(data, dict) or not all(key in data for key in IDENTITY):
        raise ReleaseError(
            f"not a release manifest (it needs {', '.join(IDENTITY)})",
            where=path,
            hint="run `docs-assistant release` again",
        )
    return data


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One read-modify-write at a time (POSIX advisory lock on a sidecar file; elsewhere none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock = path.with_name(f".{path.name}.lock")
    with lock.open("a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_manifest(path: Path, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into the manifest and write it atomically; returns the new manifest.

    A field whose old and new values are both objects is merged one level deep, so
    `update_manifest(p, gates={"staging": {...}})` keeps the `dev` gate; any other value replaces the old one.
    `version` and `git_sha` may be repeated but never changed: the manifest belongs to one release.
    """
    path = Path(path)
    with _locked(path):
        manifest = load_manifest(path)
        for key in IDENTITY:
            if key in fields and fields[key] != manifest[key]:
                raise ReleaseError(
                    f"refusing to change {key} from {manifest[key]!r} to {fields[key]!r}: "
                    "a manifest belongs to one release",
                    where=path,
                    hint="update the manifest of the release you built from, or run `docs-assistant release` anew",
                )
        for key, value in fields.items():
            old = manifest.get(key)
            manifest[key] = old | value if isinstance(old, dict) and isinstance(value, dict) else value
        atomic_write_json(path, manifest)
    return manifest
