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


class RecentIds:
    """A bounded LRU set of the answer ids this process served (feedback may only cite those)."""

    def __init__(self, size: int):
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, item: str) -> None:
        with self._lock:
            self._ids[item] = None
            self._ids.move_to_end(item)
            while len(self._ids) > self.size:
                self._ids.popitem(last=False)

    def __contains__(self, item: object) -> bool:
        with self._lock:
            return item in self._ids
