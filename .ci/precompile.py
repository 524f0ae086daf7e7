"""Compile, once per machine, the bytecode of the wheels uv has cached for this project's lock.

uv hard-links every file of a cached wheel into each environment it makes, `__pycache__` included. The
suite makes about a dozen fresh environments (each act job's `.nox/stages`, each copied or generated
project), and without this each one compiles torch, transformers, llama-index and MLflow again on first
import: tens of seconds of CPU per environment on the 2-core CI machine. Compiled in the cache, a new
environment links the bytecode with the sources, and Python finds it current (same mtime and size: the
files are the same inode). Nothing else changes: the tests still make every environment for real.

Run by `.ci/run` (not by the tests): `python3 .ci/precompile.py`. A second run compiles only what is new.
"""

from __future__ import annotations

import compileall
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def find_uv() -> Path:
    """The uv that ./noxw runs (on PATH, or the pinned one it downloaded)."""
    loader = importlib.machinery.SourceFileLoader("noxw", str(ROOT / "noxw"))
    spec = importlib.util.spec_from_loader("noxw", loader)
    assert spec is not None
    noxw = importlib.util.module_from_spec(spec)
    loader.exec_module(noxw)
    return Path(noxw.find_uv())


def linked_sources(uv: Path, venv: Path) -> set[tuple[int, int]]:
    """(device, inode) of every .py file an environment synced from uv.lock holds."""
    env = os.environ | {"UV_PROJECT_ENVIRONMENT": str(venv)}
    sync = [str(uv), "sync", "--frozen", "--all-groups", "--no-install-project", "--python", sys.executable, "-q"]
    subprocess.run(sync, cwd=ROOT, env=env, check=True)
    found = set()
    for path in venv.rglob("*.py"):
        stat = path.stat()
        if stat.st_nlink > 1:  # linked from the cache; a copy (cache on another filesystem) gains nothing
            found.add((stat.st_dev, stat.st_ino))
    return found


def cached_copies(cache: Path, wanted: set[tuple[int, int]]) -> list[str]:
    """The cache's paths of those same files (uv's unpacked wheels live under archive-v*/)."""
    paths = []
    for archive in cache.glob("archive-v*"):
        for folder, _, files in os.walk(archive):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    stat = os.stat(path)
                    if (stat.st_dev, stat.st_ino) in wanted:
                        paths.append(path)
    return paths


def compile_one(path: str) -> bool:
    # quiet=2: a file that is not valid Python 3 (a template, a test fixture) is simply left as it is
    return bool(compileall.compile_file(path, quiet=2))


def main() -> int:
    started = time.monotonic()
    uv = find_uv()
    cache = Path(subprocess.run([str(uv), "cache", "dir"], check=True, capture_output=True, text=True).stdout.strip())
    (ROOT / ".nox").mkdir(exist_ok=True)  # the throwaway environment sits on the project's filesystem, as nox's do
    with tempfile.TemporaryDirectory(prefix="precompile-", dir=ROOT / ".nox") as tmp:
        wanted = linked_sources(uv, Path(tmp) / "venv")
    if not wanted:
        print("precompile: uv copies from its cache here (another filesystem?): nothing to precompile")
        return 0
    paths = cached_copies(cache, wanted)
    with ProcessPoolExecutor() as pool:
        compiled = sum(pool.map(compile_one, paths, chunksize=256))
    print(f"precompile: {len(paths)} cached sources current ({compiled} ok) in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
