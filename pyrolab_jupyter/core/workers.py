"""The bounded pool of worker threads that handles a server's messages.

Threads are started as work needs them, up to a fixed number, and are daemon
threads: a service call that hangs forever never keeps the process from exiting
(``concurrent.futures`` joins its workers at exit).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

__all__ = ["WorkerPool"]

log = logging.getLogger(__name__)


class WorkerPool:
    """At most ``size`` daemon threads, started as work needs them (a hung service call never blocks exit)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[tuple[Any, tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0
        self._mutex = threading.Lock()

    def submit(self, fn: Any, *args: Any) -> None:
        self._jobs.put((fn, args))
        with self._mutex:
            if self._idle > 0 or self._threads >= self._size:
                return
            self._threads += 1
        threading.Thread(target=self._run, name=f"pyrolab-worker-{self._threads}", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._mutex:
                self._idle += 1
            job = self._jobs.get()
            with self._mutex:
                self._idle -= 1
            if job is None:
                return
            fn, args = job
            try:
                fn(*args)
            except Exception:  # a job's failure must not take a worker with it
                log.exception("a worker job failed")

    def shutdown(self) -> None:
        with self._mutex:
            count = self._threads
        for _ in range(count):
            self._jobs.put(None)
