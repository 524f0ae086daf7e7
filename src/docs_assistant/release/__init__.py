"""The release stage: the next semantic version from conventional commits (commitizen), the changelog, an
annotated tag, and `reports/release/manifest.json`, which pins what the release is made of.

Later stages read and extend the manifest with `load_manifest` and `update_manifest`; importing this
package is cheap (no git, commitizen or mlflow until a function runs).
"""

from __future__ import annotations

from docs_assistant.release.manifest import load_manifest, manifest_path, update_manifest
from docs_assistant.release.stage import ReleaseResult, run_release

__all__ = ["ReleaseResult", "load_manifest", "manifest_path", "run_release", "update_manifest"]
