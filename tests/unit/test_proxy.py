"""The swarm front proxy on loopback: forwards, retries a backend that is down, stops on SIGTERM."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import docs_assistant.deploy.proxy as proxy_module

PROXY = Path(proxy_module.__file__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Upstream:
    """A tiny HTTP server that answers every GET with its name."""

    def __init__(self, port: int, name: str = "upstream") -> None:
        body = name.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_proxy(backend_port: int, *, as_script: bool, retry_for: float = 10) -> tuple[subprocess.Popen[str], int]:
    listen = free_port()
    env = {
        **os.environ,
        "BACKEND": f"127.0.0.1:{backend_port}",
        "PORT": str(listen),
        "RETRY_FOR": str(retry_for),
    }
    # as a plain script, with no access to the package: what a bare base image runs
    command = [sys.executable, "-I", str(PROXY)] if as_script else [sys.executable, "-m", "docs_assistant.deploy.proxy"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", listen), timeout=0.5).close()
            return process, listen
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"proxy did not listen: {process.communicate()[1]}")


def get(port: int, timeout: float = 15) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/answer", timeout=timeout) as response:
        return response.read().decode()


@pytest.fixture
def stop_all() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("as_script", [False, True], ids=["module", "script"])
def test_forwards_requests_and_exits_cleanly_on_sigterm(as_script: bool, stop_all: list) -> None:
    upstream = Upstream(free_port(), "v1")
    try:
        process, port = start_proxy(upstream.server.server_address[1], as_script=as_script)
        stop_all.append(process)
        assert [get(port) for _ in range(20)] == ["v1"] * 20
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        upstream.stop()


def test_retries_while_the_backend_is_down(stop_all: list) -> None:
    backend = free_port()
    process, port = start_proxy(backend, as_script=True)
    stop_all.append(process)
    answers: list[str] = []
    client = threading.Thread(target=lambda: answers.append(get(port)))
    client.start()
    time.sleep(1.0)  # the request waits in the proxy, which keeps trying the backend
    upstream = Upstream(backend, "late")
    try:
        client.join(timeout=15)
        assert answers == ["late"]
    finally:
        upstream.stop()
    process.terminate()
    stderr = process.communicate(timeout=10)[1]
    assert "failed (ConnectionRefusedError" in stderr


def test_gives_up_after_retry_for(stop_all: list) -> None:
    process, port = start_proxy(free_port(), as_script=True, retry_for=0.5)
    stop_all.append(process)
    with pytest.raises((ConnectionError, OSError)):
        get(port, timeout=5)


def test_refuses_a_bad_backend_setting() -> None:
    env = {**os.environ, "BACKEND": "no-port"}
    result = subprocess.run([sys.executable, "-I", str(PROXY)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "BACKEND='no-port'" in result.stderr
