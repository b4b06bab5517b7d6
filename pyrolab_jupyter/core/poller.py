"""Daemon-side polling of properties that change by themselves (``@expose(poll=seconds)``).

Only services someone subscribes to are polled, and only a value that differs
from the last one polled is published, so an idle stage costs nothing on the
wire. One thread per daemon, started on first need; a read that fails is
published as the error (once, until it changes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Poller", "SKIP"]

log = logging.getLogger(__name__)

SKIP = object()  # what a read returns when the service is busy: try again next period

Read = Callable[[str], Any]  # property name -> value, an exception object, or SKIP


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, BaseException) or isinstance(b, BaseException):
        return type(a) is type(b) and str(a) == str(b)
    try:
        return bool(np.array_equal(a, b)) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else bool(a == b)
    except Exception:  # values that cannot compare count as changed
        return False


class Poller:
    """Reads each polled property of each subscribed service every period; publishes what changed."""

    def __init__(self, publish: Callable[[str, str, Any], None], active: Callable[[], set[str]]) -> None:
        self._publish = publish
        self._active = active
        self._services: dict[str, tuple[dict[str, float], Read]] = {}  # service -> (periods, read)
        self._due: dict[tuple[str, str], float] = {}
        self._last: dict[tuple[str, str], Any] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    def add(self, service: str, periods: dict[str, float], read: Read) -> None:
        """Poll ``periods`` (property -> seconds) of ``service`` with ``read`` while it has subscribers."""
        if periods:
            with self._mutex:
                self._services[service] = (dict(periods), read)

    def wake(self) -> None:
        """Subscribers came or went: start the thread if needed and recompute what to poll."""
        with self._mutex:
            if not self._services or self._stop.is_set():
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pyrolab-poller", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._mutex:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            active = self._active()
            with self._mutex:
                services = {s: v for s, v in self._services.items() if s in active}
            for key in [k for k in self._last if k[0] not in services]:  # nobody listens: forget
                self._last.pop(key, None)
                self._due.pop(key, None)
            now = time.monotonic()
            next_due = now + 60.0
            for service, (periods, read) in services.items():
                for prop, period in periods.items():
                    key = (service, prop)
                    due = self._due.setdefault(key, now)
                    if due <= now:
                        self._poll(key, read)
                        due = self._due[key] = max(due + period, time.monotonic())
                    next_due = min(next_due, due)
            self._wake.wait(max(0.0, next_due - time.monotonic()))

    def _poll(self, key: tuple[str, str], read: Read) -> None:
        try:
            value = read(key[1])
        except Exception as err:  # read() reports errors as values; this is a bug in it, not the service
            log.exception("polling %s.%s failed", *key)
            value = err
        if value is SKIP:
            return
        if key in self._last and _same(self._last[key], value):
            return
        self._last[key] = value  # the first one too: it may have changed since the subscriber's snapshot
        self._publish(key[0], key[1], value)
