"""Delivery of property changes from a daemon to subscribed clients (push, not poll).

Changes are queued by the service's thread and delivered by one dispatcher
thread per daemon, in order, as ordinary (not one-way) calls to a receiver
hosted in each client process. Bursts are coalesced: a subscriber gets the
latest value of each property. A subscriber that cannot be reached is dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from Pyro5.api import Proxy
from Pyro5.errors import CommunicationError

from pyrolab_jupyter.core.proxies import new_proxy
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.serialization import encode

__all__ = ["LOCK_PROPERTY", "Publisher"]

log = logging.getLogger(__name__)

_DELIVERY_TIMEOUT = 2.0
LOCK_PROPERTY = "pyrolab.locked_by"  # pseudo-property announced when the lock holder changes (None: unlocked)


class Publisher:
    """Queue of changes and the subscribers each service has."""

    def __init__(self, security: Security | None = None) -> None:
        self._security = security  # a TLS daemon calls its subscribers back over TLS too
        self._queue: queue.SimpleQueue[tuple[str, str, Any, float] | None] = queue.SimpleQueue()
        self._subscribers: dict[str, tuple[str, str]] = {}  # token -> (service, callback uri)
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self._proxies: dict[str, Proxy] = {}

    def subscribe(self, service: str, callback_uri: str, token: str) -> None:
        with self._mutex:
            self._subscribers[token] = (service, callback_uri)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pyrolab-publisher", daemon=True)
                self._thread.start()

    def unsubscribe(self, token: str) -> None:
        with self._mutex:
            self._subscribers.pop(token, None)

    def publish(self, service: str, prop: str, value: Any) -> None:
        """Queue a change; never blocks the caller (the instrument's thread)."""
        with self._mutex:
            if self._thread is None or not any(s == service for s, _ in self._subscribers.values()):
                return
        self._queue.put((service, prop, value, time.time()))

    def stop(self) -> None:
        with self._mutex:
            thread, self._thread = self._thread, None
            self._subscribers.clear()
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=_DELIVERY_TIMEOUT + 1)

    def _run(self) -> None:
        running = True
        while running:
            batch = [self._queue.get()]
            while True:  # coalesce whatever queued up meanwhile
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            running = None not in batch  # None: stop() was called
            self._deliver([item for item in batch if item is not None])
        self._close_proxies()

    def _deliver(self, batch: list[tuple[str, str, Any, float]]) -> None:
        latest: dict[str, dict[str, tuple[Any, float]]] = {}
        for service, prop, value, stamp in batch:
            latest.setdefault(service, {})[prop] = (value, stamp)
        payloads = {service: {prop: {"value": encode(v), "time": t} for prop, (v, t) in changes.items()}
                    for service, changes in latest.items()}  # encoded once, however many listen
        with self._mutex:
            subscribers = list(self._subscribers.items())
        for token, (service, uri) in subscribers:
            payload = payloads.get(service)
            if payload is None:
                continue
            try:
                self._proxy(uri).pyrolab_update(token, service, payload)
            except (CommunicationError, OSError) as err:
                log.info("dropping subscriber %s of %s: %s", token, service, err)
                self.unsubscribe(token)
                self._proxies.pop(uri, None)
            except Exception:
                log.exception("subscriber %s of %s failed on an update", token, service)

    def _proxy(self, uri: str) -> Proxy:
        proxy = self._proxies.get(uri)
        if proxy is None:
            proxy = self._proxies[uri] = new_proxy(uri, _DELIVERY_TIMEOUT, self._security, daemon_only=False)
        return proxy

    def _close_proxies(self) -> None:
        for proxy in self._proxies.values():
            proxy._pyroRelease()
        self._proxies.clear()
