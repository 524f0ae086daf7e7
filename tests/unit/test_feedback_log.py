"""The feedback log of a deployed service: one line per rating, and a clear error where it cannot write."""

from __future__ import annotations

import errno
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from docs_assistant.data.readers import FEEDBACK_FIELDS
from docs_assistant.errors import ConfigError
from docs_assistant.serve.feedback_log import FeedbackLog

ROW = {
    "id": "fb-1",
    "answer_id": "ans-" + "0" * 32,
    "rating": -1,
    "correction": "Ünïcode stays as it is",
    "created_at": datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
    "question": "q",
    "answer": "a",
    "content_hash": "not exported: validate computes it",
}


def test_each_rating_is_one_line_in_the_exported_format(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "new" / "feedback")  # made when the first rating comes
    log.append(ROW)
    log.append(ROW | {"id": "fb-2", "correction": None})
    lines = log.path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["fb-1", "fb-2"]
    first = json.loads(lines[0])
    assert tuple(first) == FEEDBACK_FIELDS
    assert first["created_at"] == "2026-12-01T12:00:00+00:00"
    assert first["correction"] == "Ünïcode stays as it is"


def test_a_failed_write_leaves_no_half_line_for_the_next_rating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = FeedbackLog(tmp_path)
    log.append(ROW)
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ConfigError, match="No space left on device"):
        log.append(ROW | {"id": "fb-lost"})
    monkeypatch.setattr(os, "fsync", real_fsync)
    log.append(ROW | {"id": "fb-3"})
    assert [json.loads(line)["id"] for line in log.path.read_text(encoding="utf-8").splitlines()] == ["fb-1", "fb-3"]


def test_a_directory_that_cannot_be_written_names_the_setting(tmp_path: Path) -> None:
    blocked = tmp_path / "feedback"
    blocked.write_text("a file where the directory should be", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        FeedbackLog(blocked).append(ROW)
    message = str(err.value)
    assert message.startswith("paths.feedback_dir: feedback was not stored: ")
    assert "mount a writable volume there" in message
