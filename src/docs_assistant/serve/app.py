"""The FastAPI app: probes, metrics and the `/v1` API over the RAG pipeline."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from docs_assistant.config import Settings
from docs_assistant.errors import DocsAssistantError
from docs_assistant.serve.auth import check_keys_configured
from docs_assistant.serve.limits import Admission, DeadlineExceededError, OverloadedError, RecentIds
from docs_assistant.serve.metrics import Metrics
from docs_assistant.serve.middleware import Observe, RequireApiKey
from docs_assistant.serve.openai_compat import chunks, completion, question_of
from docs_assistant.serve.schemas import (
    AnswerRequest,
    AnswerResponse,
    ChatRequest,
    FeedbackRequest,
    FeedbackResponse,
)
from docs_assistant.serve.startup import Startup, answer_with_cap

log = logging.getLogger("docs_assistant.serve")


class RefusedError(Exception):
    def __init__(self, status: int, detail: Any, retry_after: int | None = None):
        self.status, self.detail, self.retry_after = status, detail, retry_after


def _invalid(field: str, message: str) -> RefusedError:
    return RefusedError(422, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


def _public_sources(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sources name documents, never where the server keeps files: absolute paths are blanked."""
    out = []
    for s in sources:
        src = str(s.get("source", ""))
        absolute = PurePosixPath(src).is_absolute() or PureWindowsPath(src).is_absolute() or src.startswith("~")
        out.append(s | {"source": "" if absolute or ".." in src.split("/") else src})
    return out


class Service:
    """What the routes share: settings, start-up state, admission control, metrics, feedback store."""

    def __init__(self, settings: Settings, embedder: Any, llm: Any):
        s = settings.serve
        self.settings = settings
        self.metrics = Metrics()
        self.startup = Startup(settings, embedder=embedder, llm=llm, on_phase=self._phase_done)
        self.admission = Admission(s.max_concurrency, s.max_queue, s.request_timeout_s)
        self.answer_ids = RecentIds(s.answer_ids_kept)
        self._feedback_lock = threading.Lock()
        self._feedback_table: Any = None

    def _phase_done(self, phase: str, seconds: float) -> None:
        self.metrics.startup_phase.labels(phase).set(seconds)
        if phase == "model":
            info = self.startup.model_info
            prompt = self.startup.prompt
            self.metrics.build.info(
                {
                    "model": info.name,
                    "revision": info.revision or "",
                    "adapter": info.adapter or "",
                    "backend": info.backend,
                    "prompt_id": prompt.id,
                    "prompt_version": prompt.version,
                    "prompt_hash": prompt.hash,
                }
            )
        elif phase == "warmup":
            self.metrics.ready.set(1)

    def pipeline(self) -> Any:
        if self.startup.ready:
            return self.startup.pipeline
        retry = self.settings.serve.retry_after_s
        detail = {"detail": "not ready", **self.startup.status()}
        raise RefusedError(503, detail, retry_after=retry)

    async def answer(self, question: str, max_new_tokens: int | None = None) -> Any:
        pipeline = self.pipeline()
        text = question.strip()
        limit = self.settings.limits.max_question_chars
        if not text:
            raise _invalid("question", "must not be empty")
        if len(text) > limit:
            raise _invalid("question", f"too long: {len(text)} characters, the limit is {limit}")
        if max_new_tokens is not None:
            max_new_tokens = min(max_new_tokens, self.settings.model.max_new_tokens)
        try:
            answer = await self.admission.run(answer_with_cap, pipeline, text, max_new_tokens)
        except OverloadedError:
            raise RefusedError(429, "too many requests; retry later", self.settings.serve.retry_after_s) from None
        except DeadlineExceededError:
            raise RefusedError(504, f"no answer within {self.settings.serve.request_timeout_s} s") from None
        self.answer_ids.add(answer.id)
        self.metrics.generated_tokens.inc(answer.tokens.get("completion", 0))
        retrieval_ms = answer.timings_ms.get("embed_ms", 0.0) + answer.timings_ms.get("search_ms", 0.0)
        self.metrics.retrieval.observe(retrieval_ms / 1000)
        return answer

    def append_feedback(self, body: FeedbackRequest) -> str:
        import pyarrow as pa

        from docs_assistant.data.store import FEEDBACK, SCHEMAS, FeatureStore
        from docs_assistant.io import sha256_text

        feedback_id = f"fb-{uuid.uuid4().hex}"
        correction = body.correction or ""
        row = {
            "id": feedback_id,
            "answer_id": body.answer_id,
            "rating": body.rating,
            "correction": body.correction,
            "created_at": datetime.now(UTC),
            "content_hash": sha256_text(body.answer_id, str(body.rating), correction),
        }
        with self._feedback_lock:
            if self._feedback_table is None:
                store = FeatureStore(self.settings.paths.store_uri)
                store.ensure_table(FEEDBACK, SCHEMAS[FEEDBACK])
                self._feedback_table = store.open(FEEDBACK)
            self._feedback_table.add(pa.Table.from_pylist([row], schema=SCHEMAS[FEEDBACK]))
        return feedback_id


def create_app(settings: Settings, *, embedder: Any = None, llm: Any = None) -> FastAPI:
    """Build the app; raises ConfigError at once for a configuration that must not serve."""
    check_keys_configured(settings.serve)
    service = Service(settings, embedder, llm)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.startup.start()
        yield
        service.admission.close()

    app = FastAPI(
        title="Docs Assistant",
        lifespan=lifespan,
        max_body_size=settings.serve.max_body_bytes,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(RequireApiKey, keys=settings.serve.api_keys)
    app.add_middleware(Observe, metrics=service.metrics)

    @app.exception_handler(RefusedError)
    async def refused(_request: Request, exc: RefusedError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(DocsAssistantError)
    async def user_error(_request: Request, exc: DocsAssistantError) -> JSONResponse:
        log.error("request failed", extra={"error": str(exc)})
        return JSONResponse({"detail": exc.message}, status_code=500)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        state = service.startup.status()
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/answer")
    async def answer(body: AnswerRequest) -> AnswerResponse:
        result = await service.answer(body.question)
        data = result.as_dict()
        data["answer"] = data.pop("text")
        data.pop("question")
        data["sources"] = _public_sources(data["sources"])
        return AnswerResponse.model_validate(data)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest) -> JSONResponse | StreamingResponse:
        question = question_of(body)
        if question is None:
            raise _invalid("messages", "needs at least one message with role 'user'")
        result = await service.answer(question, body.max_completion_tokens or body.max_tokens)
        model = settings.model.name
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(chunks(result, model, include_usage=include_usage), media_type="text/event-stream")
        return JSONResponse(completion(result, model))

    @app.post("/v1/feedback", status_code=201)
    async def feedback(body: FeedbackRequest) -> FeedbackResponse:
        import anyio

        if body.answer_id not in service.answer_ids:
            raise RefusedError(404, f"unknown answer id {body.answer_id!r} (not served recently by this process)")
        feedback_id = await anyio.to_thread.run_sync(service.append_feedback, body)
        return FeedbackResponse(id=feedback_id, answer_id=body.answer_id)

    return app
