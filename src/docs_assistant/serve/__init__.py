"""The model service: the RAG pipeline behind FastAPI, with readiness, limits, API keys and metrics.

`create_app(settings)` builds the app; `docs-assistant serve` runs it with uvicorn. Start-up (imports,
prompts, model, index, a warm-up generation) runs in the background, so `/healthz` answers at once and
`/readyz` turns 200 only when a real answer has been generated.
"""
