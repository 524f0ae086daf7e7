"""The FastAPI app: probes, metrics and the `/v1` API over the RAG pipeline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from docs_assistant.config import Settings
from docs_assistant.errors import DocsAssistantError
from docs_assistant.serve.auth import check_keys_configured
from docs_assistant.serve.middleware import FAILED_STATUS, Observe, RequireApiKey
from docs_assistant.serve.openai_compat import completion, question_of, sse
from docs_assistant.serve.schemas import (
    ANSWER_LINKS,
    FEEDBACK_OPERATION,
    FEEDBACK_REFUSALS,
    GENERATION_REFUSALS,
    REFUSALS,
    AnswerRequest,
    AnswerResponse,
    ChatCompletion,
    ChatRequest,
    FeedbackRequest,
    FeedbackResponse,
    ModelCard,
    ModelList,
    Readiness,
    body_limits,
    json_safe,
    request_models,
)
from docs_assistant.serve.service import RefusedError, Service, invalid, public_name, public_sources

#: `owned_by` of the served model in GET /v1/models: this project
OWNER = "docs-assistant"

log = logging.getLogger("docs_assistant.serve")


def taking(**bodies: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An endpoint's body types swapped for this app's models before FastAPI reads the signature: the code names
    the static model, the app validates (and documents) the one carrying its settings' limits."""

    def swap(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        endpoint.__annotations__.update(bodies)
        return endpoint

    return swap


def create_app(settings: Settings, *, embedder: Any = None, llm: Any = None) -> FastAPI:
    """Build the app; raises ConfigError at once for a configuration that must not serve."""
    check_keys_configured(settings.serve)
    bodies = request_models(body_limits(settings.limits.max_question_chars, settings.serve.max_body_bytes))
    service = Service(settings, embedder, llm)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.startup.start()
        yield
        service.admission.close()
        # after the drain: the next reader of the feedback table finds it compacted
        await asyncio.to_thread(service.close_feedback, settings.serve.graceful_shutdown_s)

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

    @app.exception_handler(RequestValidationError)
    async def unprocessable(_request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422, with the echoed input made encodable: `NaN` or a lone surrogate made it a 500."""
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    @app.exception_handler(DocsAssistantError)
    async def user_error(_request: Request, exc: DocsAssistantError) -> JSONResponse:
        log.error("request failed", extra={"error": str(exc)})
        return JSONResponse({"detail": exc.message}, status_code=500)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "not ready"}})
    async def readyz() -> JSONResponse:
        state = service.readiness()
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", responses={401: REFUSALS[401]})
    async def models() -> ModelList:
        """The one model this service answers with: what OpenAI clients list before they ask."""
        return ModelList(data=[ModelCard(id=service.model_name, created=service.started, owned_by=OWNER)])

    @app.post("/v1/answer", responses={200: {"links": ANSWER_LINKS}} | GENERATION_REFUSALS)
    @taking(body=bodies.answer)
    async def answer(body: AnswerRequest) -> AnswerResponse:
        result = await service.answer(body.question)
        data = result.as_dict()
        data["answer"] = data.pop("text")
        data.pop("question")
        data["sources"] = public_sources(data["sources"])
        data["model"] |= {"name": public_name(data["model"]["name"]), "adapter": public_name(data["model"]["adapter"])}
        return AnswerResponse.model_validate(data)

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        responses={200: {"content": {"text/event-stream": {}}}} | GENERATION_REFUSALS,
    )
    @taking(body=bodies.chat)
    async def chat_completions(request: Request, body: ChatRequest) -> JSONResponse | StreamingResponse:
        found = question_of(body)
        if found is None:
            raise invalid("messages", "needs at least one message with role 'user'")
        field, question = found
        max_tokens = body.max_completion_tokens or body.max_tokens
        limit = service.token_limit(max_tokens)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            stream = service.stream(question, max_tokens, field=field)

            def failed(status: int) -> None:
                setattr(request.state, FAILED_STATUS, status)

            events = sse(
                stream,
                service.model_name,
                limit=limit,
                include_usage=include_usage,
                timeout=service.timeout,
                on_failure=failed,
            )
            return StreamingResponse(events, media_type="text/event-stream")
        result = await service.answer(question, max_tokens, field=field)
        return JSONResponse(completion(result, service.model_name, limit))

    @app.post("/v1/feedback", status_code=201, responses=FEEDBACK_REFUSALS, operation_id=FEEDBACK_OPERATION)
    @taking(body=bodies.feedback)
    async def feedback(body: FeedbackRequest) -> FeedbackResponse:
        import anyio

        service.refuse_if_draining()  # once a stop began no /v1 call starts new work, a write included
        if body.answer_id not in service.answers:
            raise RefusedError(404, f"unknown answer id {body.answer_id!r} (not served recently by this process)")
        feedback_id = await anyio.to_thread.run_sync(service.append_feedback, body)
        return FeedbackResponse(id=feedback_id, answer_id=body.answer_id)

    return app
