"""A real `docs-assistant serve` process on loopback, shared by the `serve_*` benchmarks.

`prepare()` readies a scratch project (ingest + index + the tiny model built into `var/models`), untimed;
the first call in a run does the work, later ones copy its `var/` (same data, same settings).
`serve()` starts the console script on a free 127.0.0.1 port with the benchmarks' clean environment, and
always terminates it (SIGTERM, then SIGKILL), whatever happens in the block. Its log goes to a file in
the scratch project, never to a pipe that could fill up and stall the server.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks._project import clean_env
from benchmarks.bench_pipeline_rerun import console_script

READY_WITHIN_S = 300.0
POLL_S = 0.1  # each /readyz poll takes the server's GIL briefly; 0.1 s keeps that well under 1 %
STOP_WITHIN_S = 20.0
#: pinned for both sides of the latency and throughput comparisons: greedy, so answers are deterministic,
#: and short, so a benchmark stays within minutes on two cores (the service default is 48 new tokens, and
#: the tiny model costs ~30 ms a token here over its 1536-token prompt window)
ANSWER_SETTINGS = {
    "DOCS_ASSISTANT_MODEL__MAX_NEW_TOKENS": "8",
    "DOCS_ASSISTANT_MODEL__TEMPERATURE": "0.0",
}

_cache: Path | None = None


def _cache_dir() -> Path:
    """A directory shared by the serve benchmarks of one run (bytecode, a prepared `var/`), removed at exit."""
    global _cache
    if _cache is None:
        _cache = Path(tempfile.mkdtemp(prefix="docs-assistant-bench-serve-"))
        atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    return _cache


def shared_pycache() -> str:
    """One bytecode cache for every process the serve benchmarks start in this run.

    Only used where PYTHONDONTWRITEBYTECODE is set (some sandboxes): otherwise every server and floor
    process would recompile torch and transformers, measuring the sandbox rather than the project.
    """
    path = _cache_dir() / "pycache"
    path.mkdir(exist_ok=True)
    return str(path)


def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The clean benchmark environment for a child process, with bytecode caching on, plus `extra`."""
    env = clean_env()
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = shared_pycache()
    env.update(extra or {})
    return env


def prepare(settings: Any, embedder: Any = None) -> Path:
    """Ingest, index and build the tiny model in the current (scratch) project; returns the model's directory.

    Every serve benchmark indexes the same data with the same (default) embedding and chunking settings, so
    the state directory made by the first one is copied into the others rather than re-embedded.
    """
    from docs_assistant.data.ingest import ingest
    from docs_assistant.rag.index import build_index
    from docs_assistant.rag.llm import resolve_model_path

    state = Path(settings.paths.state_dir).resolve()
    cached = _cache_dir() / "var"
    key = _cache_dir() / "var.key"
    fingerprint = json.dumps([settings.fingerprint, settings.model.name], sort_keys=True)
    if cached.is_dir() and key.read_text(encoding="utf-8") == fingerprint and not state.exists():
        shutil.copytree(cached, state)
    else:
        ingest(settings)
        build_index(settings, embedder=embedder)
        resolve_model_path(settings.model, settings.paths.models_dir)
        shutil.rmtree(cached, ignore_errors=True)
        shutil.copytree(state, cached)
        key.write_text(fingerprint, encoding="utf-8")
    path, _revision = resolve_model_path(settings.model, settings.paths.models_dir)
    return Path(path).resolve()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client(url: str, timeout: float = 60.0) -> httpx.Client:
    """A keep-alive client that ignores proxy settings (loopback must never go through one)."""
    return httpx.Client(base_url=url, timeout=timeout, trust_env=False)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    started: float  # perf_counter() just before the process was started
    ready_s: float | None = None
    readyz: dict[str, Any] = field(default_factory=dict)
    polls: int = 0

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, within_s: float = READY_WITHIN_S, poll_s: float = POLL_S) -> float:
        """Poll `/readyz` until 200; returns seconds from process start. Raises on exit, error or timeout."""
        deadline = self.started + within_s
        with client(self.url, timeout=10) as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited {self.proc.returncode} before ready; log:\n{self.log_tail()}")
                self.polls += 1
                try:
                    response = http.get("/readyz")
                except httpx.TransportError:
                    response = None
                now = time.perf_counter()
                if response is not None:
                    body = response.json()
                    if response.status_code == 200:
                        self.ready_s, self.readyz = now - self.started, body
                        return self.ready_s
                    if "error" in body:
                        raise RuntimeError(f"server start-up failed: {body}; log:\n{self.log_tail()}")
                if now > deadline:
                    raise RuntimeError(f"server not ready within {within_s:.0f} s; log:\n{self.log_tail()}")
                time.sleep(poll_s)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def serve(root: Path, env: dict[str, str], *, wait: bool = True, name: str = "serve") -> Iterator[Server]:
    """`docs-assistant serve` in `root` on a free loopback port; stopped when the block ends, even on error."""
    exe = console_script()
    port = free_port()
    log = root / f"{name}-{port}.log"
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [exe, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log, started)
    try:
        if wait:
            server.wait_ready()
        yield server
    finally:
        server.stop()
