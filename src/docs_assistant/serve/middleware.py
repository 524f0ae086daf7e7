"""Pure ASGI middleware: request ids, access logs and request metrics; API keys on `/v1/*`."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docs_assistant.serve.auth import OPEN_PATHS, authorized
from docs_assistant.serve.logs import ACCESS_LOGGER
from docs_assistant.serve.metrics import Metrics

access_log = logging.getLogger(ACCESS_LOGGER)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: statuses that mean "refused before (or instead of) doing the work", by the reason the metric reports
REJECTED = {401: "unauthorized", 413: "body_too_large", 422: "invalid", 429: "overloaded", 503: "not_ready"}
REJECTED |= {504: "timeout"}
#: key in a request's state (`request.state.failed_status`) for a response that failed after its status line
#: went out, e.g. a stream: metrics and the access log report this status instead of the 200 that was sent
FAILED_STATUS = "failed_status"


class Observe:
    """One JSON log line and one metrics sample per request; `X-Request-ID` is kept (if sane) or made.

    The status reported is the one sent, unless the response failed after sending it (`FAILED_STATUS`):
    then the failure's status, so a broken stream counts as the error it is; the log keeps both.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.in_flight.dec()
            sent, status = status, state.get(FAILED_STATUS, status)
            labels = (self.metrics.endpoint(scope["path"]), scope["method"], str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(seconds)
            if status in REJECTED and scope["path"].startswith("/v1/"):  # a 503 from /readyz reports, refuses nothing
                self.metrics.rejected.labels(REJECTED[status]).inc()
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                }
                | ({"sent_status": sent} if sent != status else {}),
            )


class RequireApiKey:
    """401 for `/v1/*` without a valid bearer key (when keys are configured), before the body is read."""

    def __init__(self, app: ASGIApp, keys: list[SecretStr]):
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or not self.keys:
            await self.app(scope, receive, send)
            return
        if authorized(Headers(scope=scope).get("authorization"), self.keys):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": "missing or invalid API key (send 'Authorization: Bearer <key>')"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer"),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
