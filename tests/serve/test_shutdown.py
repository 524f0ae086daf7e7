"""SIGTERM drains: the answer being generated completes, new requests get 503 meanwhile, then the process exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from docs_assistant.data.store import FEEDBACK, FeatureStore

from .conftest import wait_ready

pytestmark = pytest.mark.integration
QUESTION = "How do I install it?"
SERVER = Path(__file__).with_name("drain_server.py")


@contextmanager
def server_process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """The server's JSON logs go to a file: an undrained pipe would fill up and block the server."""
    with log.open("w") as sink:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=sink, text=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)


def wait_until(condition, what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_sigterm_during_a_generation_completes_it_and_refuses_new_work(serve_project, tmp_path) -> None:
    hold = tmp_path / "hold"
    generating = tmp_path / "hold.generating"
    env = os.environ | serve_project.env()
    log = tmp_path / "server.log"
    with server_process([sys.executable, str(SERVER), str(hold)], env, log) as proc:
        url = f"http://127.0.0.1:{int(proc.stdout.readline())}"
        wait_until(lambda: _answers(url), "the server to listen", within=60)
        wait_ready(url)
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=url, timeout=60) as client:
            answered = client.post("/v1/answer", json={"question": QUESTION}).json()["id"]  # to rate while draining
            hold.touch()
            in_flight = pool.submit(client.post, "/v1/answer", json={"question": QUESTION})
            wait_until(generating.exists, "the held answer to start generating")

            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: client.get("/readyz").status_code == 503, "draining")
            assert client.get("/readyz").json()["phase"] == "draining"
            assert client.get("/healthz").status_code == 200  # alive: the orchestrator must not kill it
            refused = client.post("/v1/answer", json={"question": QUESTION})
            assert refused.status_code == 503
            assert refused.json()["detail"] == "shutting down"
            assert int(refused.headers["retry-after"]) >= 1
            # feedback too, for an answer this process served: no /v1 call starts new work once draining
            feedback = client.post("/v1/feedback", json={"answer_id": answered, "rating": 1, "correction": "Thanks"})
            assert feedback.status_code == 503, feedback.text
            assert feedback.json()["detail"] == "shutting down"
            assert int(feedback.headers["retry-after"]) >= 1
            assert not in_flight.done()
            assert proc.poll() is None

            hold.unlink()
            completed = in_flight.result(timeout=60)
        assert completed.status_code == 200, completed.text
        assert completed.json()["answer"]
        proc.wait(timeout=30)
    assert '"message": "drained"' in log.read_text(), log.read_text()[-3000:]
    assert feedback_rows(serve_project) == 0  # the refused feedback wrote nothing


def test_cli_serve_stops_on_sigterm_when_idle(serve_project, tmp_path) -> None:
    env = os.environ | serve_project.env()
    port = _free_port()
    args = ["docs-assistant", "serve", "--port", str(port)]
    with server_process(
        [str(Path(sys.executable).with_name("docs-assistant")), *args[1:]], env, tmp_path / "cli.log"
    ) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url), "the CLI server to listen", within=60)
        wait_ready(url)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert time.monotonic() - started < 10  # nothing in flight: no drain wait
        assert proc.returncode in (0, -signal.SIGTERM)


def feedback_rows(project) -> int:
    store = FeatureStore(project.settings().paths.store_uri)
    return store.read(FEEDBACK).num_rows if store.has_table(FEEDBACK) else 0


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
