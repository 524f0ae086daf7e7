"""Admission control: a fixed pool of generation workers, a bounded queue, a deadline per request.

Blocking generation never runs on the event loop (`serve.service` awaits the futures). At most `max_concurrency` requests generate at once and
at most `max_queue` wait; the next one is refused at once (429) instead of piling up. A request past its
deadline gets 504; if it was still queued it is dropped, if it was running its worker finishes first,
and its slot stays taken until then, so the cap always counts real work.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class OverloadedError(Exception):
    """Every worker is busy and the queue is full."""


class DeadlineExceededError(Exception):
    """The request took longer than `serve.request_timeout_s`."""


class Admission:
    def __init__(self, max_concurrency: int, max_queue: int, timeout_s: float):
        self.capacity = max_concurrency + max_queue
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="generate")
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Requests admitted and not finished: generating plus queued."""
        return self._pending

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        with self._lock:
            if self._pending >= self.capacity:
                raise OverloadedError
            self._pending += 1
        try:
            future = self._pool.submit(fn, *args)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _f: self._release())
        return future

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class RecentAnswers:
    """A bounded LRU of the answers this process served: feedback may only cite those, and the feedback
    row keeps the question and the answer it rates, so liked and corrected answers can become training data."""

    def __init__(self, size: int):
        self.size = size
        self._answers: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, answer_id: str, question: str, text: str) -> None:
        with self._lock:
            self._answers[answer_id] = (question, text)
            self._answers.move_to_end(answer_id)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)

    def get(self, answer_id: str) -> tuple[str, str] | None:
        """(question, answer text), or None when the id was not served recently."""
        with self._lock:
            return self._answers.get(answer_id)

    def __contains__(self, item: object) -> bool:
        with self._lock:
            return item in self._answers
