"""Threads for the blocking work of HTTP requests (readings, rendering, inflating): at most `size`,
started when the work needs them and ended after `idle` seconds without any, so that a burst of
scrapes (or an attack) leaves no thread behind. concurrent.futures' ThreadPoolExecutor keeps every
thread it ever started until it is shut down.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
_Work = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class Workers(Executor):
    def __init__(self, size: int, name: str, idle: float = 5.0):
        self.size, self.name, self.idle = size, name, idle
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._waiting = 0  # threads waiting for work
        self._numbers = itertools.count()
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._queue.put((future, fn, args, kwargs))
            if self._waiting == 0 and self._threads < self.size:
                self._threads += 1
                threading.Thread(target=self._work, name=f"{self.name}_{next(self._numbers)}", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._waiting += 1
            try:
                item = self._queue.get(timeout=self.idle)
            except queue.Empty:
                item = None
            with self._lock:
                self._waiting -= 1
                # NOTE: work is queued under the lock, so an empty queue here stays empty for a
                # submit that counted this thread as waiting: it starts its own.
                if item is None and (self._closed or self._queue.empty()):
                    self._threads -= 1
                    return
            if item is None:
                continue
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                    future.set_exception(exc)
            del item, future, fn, args, kwargs  # nothing of the work outlives it in an idle thread

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
        if cancel_futures:
            while True:
                try:
                    future, *_ = self._queue.get_nowait()
                except queue.Empty:
                    break
                future.cancel()
