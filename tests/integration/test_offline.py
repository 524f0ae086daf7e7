"""Offline first, proven: the whole CLI path runs in a network namespace that has no network at all.

`HF_HUB_OFFLINE=1` only asks libraries not to call the hub; running inside `unshare --net` shows that
nothing does (ingest, index, retrieval gate, and an answer from the tiny model with the real embedder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def can_drop_network() -> bool:
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    return subprocess.run([unshare, "--net", "true"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not can_drop_network(), reason="needs `unshare --net` (root or user namespaces)")
def test_pipeline_commands_run_with_no_network(project) -> None:
    exe = str(Path(sys.executable).with_name("docs-assistant"))
    env = os.environ | project.env()
    for args in (["ingest"], ["index"], ["retrieval-eval", "--min-hit", "0.5"], ["ask", "How do I install it?"]):
        proc = subprocess.run(
            ["unshare", "--net", exe, *args], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert proc.returncode == 0, f"{args}: {proc.stderr[-3000:]}"
    assert "A: " in proc.stdout
    assert "[1] " in proc.stdout
