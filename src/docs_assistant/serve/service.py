"""What the routes share: settings, start-up, admission control, metrics, guardrail counts, feedback store.

An answer runs on a generation worker (see `limits.Admission`); a streamed one hands its screened text
pieces back to the event loop through an asyncio queue as the model produces them. Refusals (429, 503,
504, 422) are raised as `RefusedError` before any response starts, so a client never sees half a stream
for a request that was not admitted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.rag.context import ContextError
from docs_assistant.rag.guardrails import Guardrails
from docs_assistant.rag.questions import question_problem
from docs_assistant.serve.feedback_log import FeedbackLog
from docs_assistant.serve.limits import Admission, DeadlineExceededError, OverloadedError, RecentAnswers
from docs_assistant.serve.metrics import Metrics
from docs_assistant.serve.schemas import FeedbackRequest
from docs_assistant.serve.startup import Startup

_DONE = object()
log = logging.getLogger("docs_assistant.serve")
#: compaction leaves feedback files of this many rows alone, so it rewrites only the recent tail, not the table
FEEDBACK_ROWS_PER_FILE = 10_000
#: where a request's question is, as a 422's `loc` names it after "body"
Loc = tuple[str | int, ...]
QUESTION: Loc = ("question",)


class RefusedError(Exception):
    def __init__(self, status: int, detail: Any, retry_after: int | None = None):
        self.status, self.detail, self.retry_after = status, detail, retry_after


def invalid(field: str | Loc, message: str) -> RefusedError:
    """A 422 shaped like FastAPI's own, naming the field: `"messages"` or `("messages", 0, "content")`."""
    loc = [field] if isinstance(field, str) else list(field)
    return RefusedError(422, [{"loc": ["body", *loc], "msg": message, "type": "value_error"}])


def _is_path(value: str) -> bool:
    return PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or value.startswith("~")


def public_name(value: str | None) -> str | None:
    """A model or adapter as clients may see it: a local directory is reduced to its last component."""
    if value is None or not _is_path(value):
        return value
    return PurePosixPath(value.replace("\\", "/")).name


def public_sources(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sources name documents, never where the server keeps files: absolute paths are blanked."""
    out = []
    for s in sources:
        src = str(s.get("source", ""))
        out.append(s | {"source": "" if _is_path(src) or ".." in src.split("/") else src})
    return out


class AnswerStream:
    """The screened text pieces of one answer as they are generated; `answer` is set once they end."""

    def __init__(self, service: Service, queue: asyncio.Queue[Any], future: Any, answer_id: str):
        self._service = service
        self._queue = queue
        self._future = future
        self.answer_id = answer_id
        self.answer: Any = None

    async def __aiter__(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._service.settings.serve.request_timeout_s
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), max(deadline - loop.time(), 0))
            except TimeoutError:
                raise DeadlineExceededError from None
            if item is _DONE:
                break
            yield item
        self.answer = self._future.result()  # the worker's exception, if it failed
        self._service.record(self.answer)


class Service:
    def __init__(self, settings: Settings, embedder: Any, llm: Any):
        s = settings.serve
        self.settings = settings
        self.metrics = Metrics(settings.serve.request_timeout_s)
        self.startup = Startup(settings, embedder=embedder, llm=llm, on_phase=self._phase_done)
        self.admission = Admission(s.max_concurrency, s.max_queue, s.request_timeout_s)
        self.answers = RecentAnswers(s.answer_ids_kept)
        self.draining = threading.Event()
        self.started = int(time.time())  # `created` of the one model GET /v1/models lists
        self._feedback_lock = threading.Lock()  # one append at a time; guards the compaction bookkeeping too
        self._feedback_table: Any = None
        feedback_dir = settings.paths.feedback_dir
        self._feedback_log = FeedbackLog(feedback_dir) if feedback_dir is not None else None
        self._feedback_uncompacted = 0  # posts appended since the last compaction began
        self._feedback_compacting = False  # a compaction thread is running (or about to)
        self._feedback_compactor: threading.Thread | None = None
        self._compaction_lock = threading.Lock()  # one compaction at a time in this process
        self._guardrails = Guardrails(settings.guardrails)  # the answers' redactor, for what feedback stores

    @property
    def model_name(self) -> str:
        return public_name(self.settings.model.name) or ""

    def readiness(self) -> dict[str, Any]:
        state = self.startup.status()
        if self.draining.is_set():
            state |= {"ready": False, "phase": "draining"}
        return state

    def _phase_done(self, phase: str, seconds: float) -> None:
        self.metrics.startup_phase.labels(phase).set(seconds)
        if phase == "model":
            info = self.startup.model_info
            prompt = self.startup.prompt
            self.metrics.build.info(
                {
                    "model": public_name(info.name) or "",
                    "revision": info.revision or "",
                    "adapter": public_name(info.adapter) or "",
                    "backend": info.backend,
                    "prompt_id": prompt.id,
                    "prompt_version": prompt.version,
                    "prompt_hash": prompt.hash,
                }
            )
        elif phase == "warmup":
            self.metrics.ready.set(1)

    def refuse_if_draining(self) -> None:
        """503 with Retry-After once a stop began: no new work of any kind, so the drain has an end."""
        if self.draining.is_set():
            retry = self.settings.serve.retry_after_s
            raise RefusedError(503, {"detail": "shutting down", **self.readiness()}, retry_after=retry)

    def _pipeline(self) -> Any:
        retry = self.settings.serve.retry_after_s
        self.refuse_if_draining()
        if self.startup.ready:
            return self.startup.pipeline
        raise RefusedError(503, {"detail": "not ready", **self.startup.status()}, retry_after=retry)

    def _checked(self, pipeline: Any, question: str, field: Loc, max_new_tokens: int | None) -> str:
        """The question as the pipeline takes it, or a 422 naming `field`: before admission, never mid-answer."""
        text = question.strip()
        if problem := question_problem(text, self.settings.limits.max_question_chars):
            raise invalid(field, problem)
        try:
            pipeline.check_fits(text, self.token_limit(max_new_tokens))
        except ContextError as err:
            raise invalid(field, f"too long for the model's input: {err.message}") from None
        return text

    def token_limit(self, max_new_tokens: int | None) -> int:
        """The tokens an answer may have: the request's `max_new_tokens` capped by the setting, else the setting.

        Generation is given exactly this, so an answer that used it all was cut off (finish reason `length`).
        """
        cap = self.settings.model.max_new_tokens
        return cap if max_new_tokens is None else min(max_new_tokens, cap)

    def _submit(self, fn: Any) -> Any:
        try:
            return self.admission.submit(fn)
        except OverloadedError:
            raise RefusedError(429, "too many requests; retry later", self.settings.serve.retry_after_s) from None

    def timeout(self) -> RefusedError:
        return RefusedError(504, f"no answer within {self.settings.serve.request_timeout_s} s")

    async def answer(self, question: str, max_new_tokens: int | None = None, *, field: Loc = QUESTION) -> Any:
        """`field`: where the request carries the question, so a 422 for it names that field."""
        pipeline = self._pipeline()
        text = self._checked(pipeline, question, field, max_new_tokens)
        run = functools.partial(pipeline.answer, text, max_new_tokens=self.token_limit(max_new_tokens))
        future = self._submit(run)
        try:
            answer = await asyncio.wait_for(asyncio.wrap_future(future), self.admission.timeout_s)
        except TimeoutError:
            raise self.timeout() from None
        self.record(answer)
        return answer

    def stream(self, question: str, max_new_tokens: int | None = None, *, field: Loc = QUESTION) -> AnswerStream:
        """Admit a streamed answer now (or refuse it now); its pieces arrive by iterating the result."""
        pipeline = self._pipeline()
        text = self._checked(pipeline, question, field, max_new_tokens)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        answer_id = f"ans-{uuid.uuid4().hex}"

        def on_text(piece: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, piece)

        run = functools.partial(
            pipeline.answer, text, max_new_tokens=self.token_limit(max_new_tokens), on_text=on_text, answer_id=answer_id
        )
        future = self._submit(run)
        # queued after every piece the worker sent, since both go through call_soon_threadsafe in order
        future.add_done_callback(lambda _f: loop.call_soon_threadsafe(queue.put_nowait, _DONE))
        return AnswerStream(self, queue, future, answer_id)

    def record(self, answer: Any) -> None:
        self.answers.add(answer.id, answer.question, answer.text)
        self.metrics.generated_tokens.inc(answer.tokens.get("completion", 0))
        retrieval_ms = answer.timings_ms.get("embed_ms", 0.0) + answer.timings_ms.get("search_ms", 0.0)
        self.metrics.retrieval.observe(retrieval_ms / 1000)
        guardrail = answer.guardrail
        if guardrail["blocked"]:
            self.metrics.guardrail_blocked.labels(guardrail["blocked"]).inc()
        for kind, count in guardrail["redactions"].items():
            self.metrics.redactions.labels(kind).inc(count)

    def append_feedback(self, body: FeedbackRequest) -> str:
        """Store one rating with the question and answer it rates; free text is redacted like answers are.

        The answer was redacted when it was served; the question and the correction are what users typed,
        and a row in the feature store becomes training data, so PII in them is redacted before it is kept.
        The content hash covers the stored (redacted) correction, as `validate` computes it from the table.
        """
        import pyarrow as pa

        from docs_assistant.data.store import FEEDBACK, SCHEMAS, FeatureStore
        from docs_assistant.io import sha256_text

        feedback_id = f"fb-{uuid.uuid4().hex}"
        redacted: Counter[str] = Counter()
        correction = None if body.correction is None else self._guardrails.redact(body.correction, redacted)
        question, answer = self.answers.get(body.answer_id) or (None, None)
        if question is not None:
            question = self._guardrails.redact(question, redacted)
        row = {
            "id": feedback_id,
            "answer_id": body.answer_id,
            "rating": body.rating,
            "correction": correction,
            "question": question,
            "answer": answer,
            "created_at": datetime.now(UTC),
            "content_hash": sha256_text(body.answer_id, str(body.rating), correction or ""),
        }
        if self._feedback_log is not None:  # a deployed image: its store is read-only
            with self._feedback_lock:
                self._feedback_log.append(row)
            return feedback_id
        with self._feedback_lock:
            if self._feedback_table is None:
                store = FeatureStore(self.settings.paths.store_uri)
                store.ensure_table(FEEDBACK, SCHEMAS[FEEDBACK])  # adds columns an older store lacks
                self._feedback_table = store.open(FEEDBACK)
                # the files an earlier process left (one per post) are due for compaction like this one's
                fragments = self._feedback_table.stats()["fragment_stats"]["num_fragments"]
                self._feedback_uncompacted = max(fragments - 1, 0)
            # committed to disk before this returns, so before the 201 is sent; compaction never delays it
            self._feedback_table.add(pa.Table.from_pylist([row], schema=SCHEMAS[FEEDBACK]))
            self._feedback_uncompacted += 1
            self._start_compaction_if_due()
        return feedback_id

    def _start_compaction_if_due(self) -> None:
        """Under `_feedback_lock`: compact in a background thread once `serve.feedback_compact_every` posts wait.

        Each post commits one small file, and a scan opens every file: 405 posts made reading the table 46x
        slower than after a compaction. Posts keep being appended while it runs (Lance commits an append
        and a compaction of older files side by side), so no request waits for it.
        """
        every = self.settings.serve.feedback_compact_every
        if not every or self._feedback_compacting or self._feedback_uncompacted < every:
            return
        self._feedback_compacting = True
        self._feedback_compactor = threading.Thread(target=self._compact_while_due, name="feedback-compaction")
        self._feedback_compactor.daemon = True  # a kill mid-compaction loses nothing: the old files stay
        self._feedback_compactor.start()

    def _compact_while_due(self) -> None:
        """Compact until fewer than `feedback_compact_every` posts wait (posts made during one may make another due)."""
        every = self.settings.serve.feedback_compact_every
        while True:
            with self._feedback_lock:
                if self._feedback_uncompacted < every:
                    self._feedback_compacting = False  # decided under the lock, so the next due post starts one
                    return
                taken, self._feedback_uncompacted = self._feedback_uncompacted, 0
            try:
                self.compact_feedback()
            except Exception as exc:  # the rows are stored already; the next due post tries again
                log.warning("feedback compaction failed", extra={"error": str(exc)})
                with self._feedback_lock:
                    self._feedback_uncompacted += taken
                    self._feedback_compacting = False
                return

    def compact_feedback(self) -> None:
        """Merge the feedback table's small files into few, as a new table version.

        Only compaction: `optimize()` would also delete versions older than a week, and the versions
        manifests and fine-tuning runs record must stay readable. Safe beside appends and other readers.
        The table is opened afresh every time: with lance 14, compacting through a handle left at an old
        version after another compaction duplicated rows appended in between (a fresh one did not).
        """
        from docs_assistant.data.store import FEEDBACK, FeatureStore

        with self._compaction_lock:
            table = FeatureStore(self.settings.paths.store_uri).open(FEEDBACK)
            table.to_lance().optimize.compact_files(target_rows_per_fragment=FEEDBACK_ROWS_PER_FILE)

    def wait_feedback_compaction(self, timeout_s: float | None = None) -> bool:
        """Wait for a running background compaction; False if it is still running after `timeout_s`."""
        thread = self._feedback_compactor
        if thread is not None:
            thread.join(timeout_s)
        return thread is None or not thread.is_alive()

    def close_feedback(self, timeout_s: float | None = None) -> None:
        """At a stop, after the drain: finish any compaction and compact what is left, for the next reader.

        With `serve.feedback_compact_every = 0` compaction is off, at a stop too: the setting means it.
        """
        if self.settings.serve.feedback_compact_every == 0:
            return
        self.wait_feedback_compaction(timeout_s)
        with self._feedback_lock:
            if self._feedback_table is None or not self._feedback_uncompacted or self._feedback_compacting:
                return
            try:
                self.compact_feedback()
            except Exception as exc:  # the rows are stored; the next process compacts them on its first post
                log.warning("feedback compaction failed", extra={"error": str(exc)})
                return
            self._feedback_uncompacted = 0
