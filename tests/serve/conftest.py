"""The real service on loopback: uvicorn in a thread, the tiny model, the bundled embedder, real LanceDB."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ..conftest import SMALL_CORPUS, Project, ingest_and_index, make_project  # noqa: TID252 - the shared project builder

KEY = "test-key-0123456789"
READY_WITHIN_S = 120.0


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve `app` on a free loopback port until the block ends; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)  # signal handlers are only installed from the main thread
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn exited while starting"
            assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def wait_ready(url: str) -> list[int]:
    """Poll /readyz until 200 (bounded); returns every status seen."""
    seen: list[int] = []
    deadline = time.monotonic() + READY_WITHIN_S
    # a generous read timeout: importing torch's shared libraries holds the GIL, on a loaded machine for seconds
    with httpx.Client(base_url=url, timeout=60) as client:
        while time.monotonic() < deadline:
            response = client.get("/readyz")
            seen.append(response.status_code)
            if response.status_code == 200:
                return seen
            body = response.json()
            assert "error" not in body, body
            time.sleep(0.05)
    raise AssertionError(f"not ready within {READY_WITHIN_S} s: {seen[-5:]}")


def build_project(root: Path, models_dir: Path, embedder: Any) -> Project:
    return ingest_and_index(make_project(root, models_dir, SMALL_CORPUS), embedder)


@pytest.fixture(scope="module")
def serve_project(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, embedder: Any) -> Project:
    """An indexed project shared by one test module (its feedback table takes writes)."""
    return build_project(tmp_path_factory.mktemp("serve") / "project", models_dir, embedder)


class GatedLLM:
    """The real tiny model behind a gate the test opens: generation waits until `gate` is set."""

    def __init__(self, llm: Any):
        self.llm = llm
        self.info = llm.info
        self.gate = threading.Event()
        self.gate.set()

    def generate(self, prompt: str, *, max_new_tokens: int | None = None, on_text: Any = None) -> Any:
        assert self.gate.wait(60), "gate never opened"
        return self.llm.generate(prompt, max_new_tokens=max_new_tokens, on_text=on_text)


@pytest.fixture(scope="module")
def tiny_llm(serve_project) -> Any:
    from docs_assistant.rag.llm import LocalLLM

    settings = serve_project.settings()
    return LocalLLM(settings.model, settings.paths.models_dir)


@pytest.fixture
def gated(tiny_llm) -> Iterator[GatedLLM]:
    llm = GatedLLM(tiny_llm)
    yield llm
    llm.gate.set()  # let any worker still waiting finish before the server stops


@pytest.fixture
def client(url: str) -> Iterator[httpx.Client]:
    """A client of the module's `url` fixture (its app), without a key; a module that needs one defines its own."""
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


def iter_stream_events(client: httpx.Client, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The JSON events of a streamed chat completion as they arrive (the closing `data: [DONE]` left out)."""
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                yield json.loads(line[6:])


def stream_events(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON events of a streamed chat completion, in order (the closing `data: [DONE]` left out)."""
    return list(iter_stream_events(client, body))
