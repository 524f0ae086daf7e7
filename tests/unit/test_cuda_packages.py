"""deploy/cuda_packages.py: what a CPU image leaves out of the lock, computed from uv.lock itself."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "cuda_packages.py"


def load_script():
    spec = importlib.util.spec_from_file_location("cuda_packages", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_real_lock_drops_torch_and_its_cuda_build_but_keeps_what_cpu_torch_needs() -> None:
    lock = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    dropped = load_script().cuda_only(lock)
    assert "torch" in dropped
    assert "triton" in dropped
    assert any(name.startswith("nvidia-cublas") for name in dropped)
    assert any(name.startswith("nvidia-cudnn") for name in dropped)
    for kept in ("sympy", "filelock", "jinja2", "networkx", "fsspec", "numpy", "transformers"):
        assert kept not in dropped


def test_a_package_something_else_needs_is_kept() -> None:
    lock = {
        "package": [
            {"name": "app", "source": {"editable": "."}, "dependencies": [{"name": "torch"}, {"name": "lib"}]},
            {
                "name": "torch",
                "dependencies": [
                    {"name": "sympy"},
                    {"name": "nvidia-x", "marker": "sys_platform == 'linux'"},
                    {"name": "shared", "marker": "sys_platform == 'linux'"},
                ],
            },
            {"name": "lib", "dependencies": [{"name": "shared"}]},
            {"name": "sympy"},
            {"name": "nvidia-x", "dependencies": [{"name": "nvidia-y"}]},
            {"name": "nvidia-y"},
            {"name": "shared"},
        ]
    }
    assert load_script().cuda_only(lock) == ["nvidia-x", "nvidia-y", "torch"]


def test_the_script_prints_one_name_per_line_for_the_dockerfile() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(REPO / "uv.lock")], capture_output=True, text=True, check=True
    )
    names = out.stdout.split()
    assert "torch" in names
    assert all(" " not in n for n in names)
