"""A content-addressed result cache, so re-running the gate on unchanged cases costs nothing.

Keys hash everything that decides a result: the prompt hash, the model identity (name, revision, adapter
hash, generation settings), the guardrail settings and the case's full input (the rendered prompt
contains the retrieved context, so a changed index changes the key). One JSON file per entry, written
atomically under `<state_dir>/evals/cache/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docs_assistant.config import TINY_MODEL, ModelSettings
from docs_assistant.io import atomic_write_json, sha256_file, sha256_text


class EvalCache:
    def __init__(self, root: Path | None):
        self.root = root
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(*parts: Any) -> str:
        return sha256_text(*(json.dumps(p, sort_keys=True, default=str) for p in parts))

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any:
        if self.root is not None:
            path = self._path(key)
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # absent, or a damaged entry: recompute it
                value = None
            if value is not None:
                self.hits += 1
                return value
        self.misses += 1
        return None

    def put(self, key: str, value: Any) -> Any:
        if self.root is not None:
            atomic_write_json(self._path(key), value)
        return value


def model_identity(settings: ModelSettings) -> dict[str, Any]:
    """What makes two generations comparable, known without loading the model."""
    revision = settings.revision
    if settings.backend == "local" and settings.name == TINY_MODEL:
        from docs_assistant.rag.tiny_model import tiny_model_revision

        revision = tiny_model_revision()
    elif settings.backend == "local" and revision is None and Path(settings.name).is_dir():
        revision = _directory_hash(Path(settings.name))
    adapter = None
    if settings.adapter_path is not None and settings.adapter_path.is_dir():
        adapter = _directory_hash(settings.adapter_path)
    return {
        "backend": settings.backend,
        "name": settings.name,
        "revision": revision,
        "adapter_hash": adapter,
        "max_new_tokens": settings.max_new_tokens,
        "max_input_tokens": settings.max_input_tokens,
        "temperature": settings.temperature,
        "seed": settings.seed,
    }


def _directory_hash(path: Path) -> str:
    """Hash of a saved model or adapter: its config and weight files' contents."""
    files = sorted(p for p in path.iterdir() if p.suffix in {".json", ".safetensors"} and p.is_file())
    return sha256_text(*(f"{p.name}:{sha256_file(p)}" for p in files))[:16]
