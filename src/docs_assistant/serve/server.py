"""uvicorn with a draining stop: on SIGTERM the service first refuses new work, then finishes what it has.

Plain uvicorn closes its listening socket at once, so a request arriving during shutdown gets a refused
connection, and a load balancer learns nothing. Here the first SIGTERM (or Ctrl-C) flips the service to
draining: `/readyz` says 503 `draining`, new `/v1` requests get 503 with `Retry-After`, and admitted
ones, queued or generating, run to completion. Once none is left (or `serve.graceful_shutdown_s` has
passed) uvicorn's own shutdown runs. A second signal exits at once.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import FrameType
from typing import Any

import uvicorn

from docs_assistant.config import Settings

log = logging.getLogger("docs_assistant.serve")
POLL_S = 0.05


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service: Any):
        super().__init__(config)
        self.service = service
        self.drain_timeout_s = float(service.settings.serve.graceful_shutdown_s)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.service.draining.is_set():  # the second signal: no more waiting
            self.force_exit = True
            super().handle_exit(sig, frame)
            return
        self.service.draining.set()
        log.info("draining", extra={"pending": self.service.admission.pending})
        threading.Thread(target=self._exit_when_drained, args=(sig, frame), name="drain", daemon=True).start()

    def _exit_when_drained(self, sig: int, frame: FrameType | None) -> None:
        deadline = time.monotonic() + self.drain_timeout_s
        while self.service.admission.pending and time.monotonic() < deadline:
            time.sleep(POLL_S)
        log.info("drained", extra={"pending": self.service.admission.pending})
        super().handle_exit(sig, frame)


def serve(app: Any, settings: Settings, *, host: str, port: int, sock: socket.socket | None = None) -> None:
    """Run `app` (from `create_app`) until a signal stops it, draining first."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="auto",
        http="auto",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.serve.graceful_shutdown_s),
    )
    DrainingServer(config, app.state.service).run(sockets=[sock] if sock else None)
