"""What a result was made from: the commit and the feature-store table versions.

Fine-tuning tags its registered version with these, and a release pins them in its manifest; both read
them here, so the two records mean the same thing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

#: the tables a model or a release depends on: the three feature tables and the vector index
LINEAGE_TABLES = ("documents", "qa", "feedback", "chunks")


def git_sha(root: Path) -> str:
    """HEAD's SHA, with '-dirty' when the tree has uncommitted changes; 'unknown' outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def table_versions(store_uri: Path, tables: tuple[str, ...] = LINEAGE_TABLES) -> dict[str, int] | None:
    """The current version of each of `tables` the store holds; None when there is no store (nothing is created)."""
    if not Path(store_uri).is_dir():  # connecting would create the directory
        return None
    from docs_assistant.data.store import FeatureStore

    store = FeatureStore(store_uri)
    present = set(store.table_names())
    return {name: store.open(name).version for name in tables if name in present}
