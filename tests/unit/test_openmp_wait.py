"""Idle OpenMP threads sleep rather than spin, unless the environment says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import docs_assistant.cli, os, torch; print(os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())"


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_package_sets_the_wait_policy_before_torch_loads_unless_given(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == expected
