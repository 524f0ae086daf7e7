"""Start-up in measured phases, in a background thread, so liveness answers while the model loads.

Phases, in order: `imports` (torch, transformers, sentence-transformers, LanceDB; sets torch's thread
count), `prompts` (cheap, fails fast), `model` (the LLM and the embedder), `index` (the vector table, via
the pipeline), `warmup` (one real answer). Ready means every phase finished; a failure records the phase
and the error's text and stays failed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.errors import DocsAssistantError

log = logging.getLogger("docs_assistant.serve")
PHASES = ("imports", "prompts", "model", "index", "warmup")
WARMUP_QUESTION = "How do I get started?"


class Startup:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Any = None,
        llm: Any = None,
        on_phase: Callable[[str, float], None] | None = None,
    ):
        self.settings = settings
        self._embedder = embedder
        self._llm = llm
        self._on_phase = on_phase or (lambda _phase, _seconds: None)
        self.phase = "pending"
        self.durations: dict[str, float] = {}
        self.error: str | None = None
        self.pipeline: Any = None
        self.prompt: Any = None
        self.model_info: Any = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="startup", daemon=True)

    @property
    def ready(self) -> bool:
        return self.pipeline is not None and self.error is None

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def status(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "ready": self.ready,
            "phase": "ready" if self.ready else self.phase,
            "phases": {k: round(v * 1000, 3) for k, v in self.durations.items()},
        }
        if self.error is not None:
            state["error"] = self.error
        return state

    def _timed(self, phase: str, step: Callable[[], Any]) -> Any:
        self.phase = phase
        started = time.perf_counter()
        result = step()
        self.durations[phase] = time.perf_counter() - started
        self._on_phase(phase, self.durations[phase])
        log.info("start-up phase done", extra={"phase": phase, "duration_ms": round(self.durations[phase] * 1000, 3)})
        return result

    def _run(self) -> None:
        try:
            self._timed("imports", lambda: _heavy_imports(self.settings))
            self.prompt = self._timed("prompts", self._load_prompt)
            llm, embedder = self._timed("model", self._load_models)
            pipeline = self._timed("index", lambda: _pipeline(self.settings, embedder, llm))
            self._timed("warmup", lambda: pipeline.answer(WARMUP_QUESTION))
            self.pipeline = pipeline
        except DocsAssistantError as exc:
            self.error = public_error(exc)  # /readyz is open: it names the problem, the log names the file
            log.error("start-up failed", extra={"phase": self.phase, "error": str(exc)})
        except Exception as exc:  # an unexpected failure still has to show on /readyz, not kill a thread
            self.error = f"{type(exc).__name__} in the {self.phase} phase (the server log has the details)"
            log.exception("start-up failed", extra={"phase": self.phase})
        finally:
            self._done.set()

    def _load_prompt(self) -> Any:
        from docs_assistant.rag.prompts import PromptRegistry

        s = self.settings
        return PromptRegistry.load(s.paths.prompts_dir).get(s.prompt.id, s.prompt.version)

    def _load_models(self) -> tuple[Any, Any]:
        from docs_assistant.rag.embeddings import load_query_embedder
        from docs_assistant.rag.llm import load_configured_llm

        s = self.settings
        llm = self._llm or load_configured_llm(s)
        embedder = self._embedder or load_query_embedder(s.embedding)
        self.model_info = llm.info
        return llm, embedder


def public_error(exc: DocsAssistantError) -> str:
    """The error as an open endpoint may show it: its message and hint, and where only if that is no file path."""
    where = exc.where or ""
    shown = f"{where}: {exc.message}" if where and not any(mark in where for mark in ("/", "\\", "~")) else exc.message
    return f"{shown} ({exc.hint})" if exc.hint else shown


def _heavy_imports(settings: Settings) -> None:
    import lancedb  # noqa: F401
    import sentence_transformers  # noqa: F401 - the embedder's library, else counted as "model"
    import torch
    import transformers  # noqa: F401

    import docs_assistant.rag.pipeline  # noqa: F401

    torch.set_num_threads(generation_threads(settings.serve.torch_threads, settings.serve.max_concurrency))


def generation_threads(configured: int, max_concurrency: int) -> int:
    """Threads per generation so that concurrent generations never oversubscribe the CPUs.

    torch defaults to one intra-op thread per core for *each* generating thread; with `max_concurrency`
    of them and spin-waiting OpenMP threads, a busy machine made answers several times slower.
    """
    if configured:
        return configured
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // max_concurrency)


def _pipeline(settings: Settings, embedder: Any, llm: Any) -> Any:
    from docs_assistant.rag.pipeline import RagPipeline

    return RagPipeline(settings, embedder=embedder, llm=llm)
