"""Feedback as JSON lines, for a service that cannot write to its feature store: the deployed image.

A deployed container's root is read-only, and the feature store it carries is the index the release pinned,
so the store's `feedback` table cannot take a row there. With `paths.feedback_dir` set (the image sets
/app/feedback, where the swarm deploy mounts each environment's volume) each process appends its ratings to
a file of its own, in the format `validate` ingests from data/feedback/*.jsonl; `docs-assistant env feedback
ENV` copies the files out of the volume. Replicas share the volume; a file per process means no two writers
ever share a file, and a line is synced to disk before the 201 is sent.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from docs_assistant.errors import ConfigError

SETTING = "paths.feedback_dir"
#: where the image's settings put it, and where the swarm deploy mounts the environment's volume
IMAGE_DIR = "/app/feedback"


class FeedbackLog:
    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / f"{socket.gethostname()}-{os.getpid()}.jsonl"

    def append(self, row: dict[str, Any]) -> None:
        """Append one rating as one line, in the fields validate reads, and sync it; an unwritable directory names
        the setting."""
        from docs_assistant.data.readers import FEEDBACK_FIELDS  # not at import: the deploy commands import this module

        record = {name: row.get(name) for name in FEEDBACK_FIELDS}
        if isinstance(record["created_at"], datetime):
            record["created_at"] = record["created_at"].isoformat()
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            start = os.fstat(fd).st_size  # only this process appends to this file
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, start)  # no half line for the next rating to be glued onto (a full disk)
                raise
            finally:
                os.close(fd)
        except OSError as err:
            raise ConfigError(
                f"feedback was not stored: {self.path}: {err.strerror}",
                where=SETTING,
                hint="mount a writable volume there (the swarm deploy mounts one per environment), or unset it to "
                "append to the feature store",
            ) from err
