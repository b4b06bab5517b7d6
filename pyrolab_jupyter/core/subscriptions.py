"""The client side of live values: a callback receiver hosted in the client process.

One small Pyro5 daemon per client process (started on first subscription,
bound to the address this process uses to reach the daemon, in a daemon
thread so it never keeps the process alive) receives every update and hands
it to the callback registered under the subscription's token.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from Pyro5.api import Daemon, expose

from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.serialization import decode
from pyrolab_jupyter.core.tls import TlsThreadDaemon

__all__ = ["Callback", "receiver"]

log = logging.getLogger(__name__)

Callback = Callable[[str, Any, float], None]  # (property, value, epoch seconds)


class _Inbox:
    def __init__(self) -> None:
        self.callbacks: dict[str, Callback] = {}
        self.mutex = threading.Lock()

    @expose
    def pyrolab_update(self, token: str, service: str, payload: dict[str, Any]) -> None:
        with self.mutex:
            callback = self.callbacks.get(token)
        if callback is None:
            return
        for prop, change in payload.items():
            try:
                callback(prop, decode(change["value"]), change["time"])
            except Exception:  # a broken callback must not drop the subscription
                log.exception("callback for %s.%s failed", service, prop)


class _Receiver:
    def __init__(self, host: str, security: Security | None) -> None:
        self.inbox = _Inbox()
        self.daemon = Daemon(host=host, port=0) if security is None else TlsThreadDaemon(host, 0, security)
        self.uri = str(self.daemon.register(self.inbox, "pyrolab.inbox"))
        self.thread = threading.Thread(target=self.daemon.requestLoop, name="pyrolab-inbox", daemon=True)
        self.thread.start()

    def add(self, callback: Callback) -> str:
        token = uuid.uuid4().hex
        with self.inbox.mutex:
            self.inbox.callbacks[token] = callback
        return token

    def remove(self, token: str) -> None:
        with self.inbox.mutex:
            self.inbox.callbacks.pop(token, None)


_receivers: dict[tuple[str, int], _Receiver] = {}
_receivers_mutex = threading.Lock()


def receiver(host: str, security: Security | None = None) -> _Receiver:
    """The process's receiver reachable at ``host`` (over TLS with ``security``; started on first use)."""
    key = (host, id(security))
    with _receivers_mutex:
        found = _receivers.get(key)
        if found is None:
            found = _receivers[key] = _Receiver(host, security)
        return found
