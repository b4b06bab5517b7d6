"""The client side of live values: a callback receiver hosted in the client process.

One small Pyro5 daemon per client process (started on first subscription,
bound to the address this process uses to reach the daemon, in a daemon
thread so it never keeps the process alive) receives every update, drops it
into the subscription's mailbox and answers at once: a slow callback never
holds up the daemon. Each subscription's own thread calls the callback and,
when the daemon announces a completed call, re-reads the properties that call
may have changed (all of them when it did not say) in one round trip.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from Pyro5.api import Daemon, expose

from pyrolab_jupyter.core.mailbox import Mailbox
from pyrolab_jupyter.core.publish import CALL_PROPERTY, merge_calls
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.serialization import REREAD, decode
from pyrolab_jupyter.core.tls import TlsThreadDaemon

__all__ = ["KEEPALIVE", "Callback", "Listener", "receiver"]

log = logging.getLogger(__name__)

Callback = Callable[[str, Any, float], None]  # (property, value, epoch seconds)
KEEPALIVE = 5.0  # seconds without an update after which a subscription checks the daemon still serves it
Reread = Callable[[list[str] | None], Mapping[str, Any]]  # names (None: all) -> values and "__time__"


class Listener:
    """One subscription's mailbox and the thread that hands its values to the callback.

    After ``KEEPALIVE`` seconds without an update it calls ``keepalive`` (the
    subscription checks that the daemon still serves it and renews it if not:
    a daemon drops a subscriber it could not reach, or restarted).
    """

    def __init__(self, callback: Callback, reread: Reread, name: str,
                 keepalive: Callable[[], None] | None = None) -> None:
        self.callback = callback
        self._reread = reread
        self._keepalive = keepalive
        self.mailbox = Mailbox()
        self._thread = threading.Thread(target=self._run, name=f"pyrolab-subscription-{name}", daemon=True)
        self._thread.start()

    def put(self, prop: str, value: Any, stamp: float) -> None:
        self.mailbox.put(prop, value, stamp, merge_calls if prop == CALL_PROPERTY else None)

    def close(self) -> None:
        self.mailbox.close()

    def _run(self) -> None:
        while (batch := self.mailbox.take(KEEPALIVE)) is not None:
            if not batch:
                self._check()
                continue
            call = batch.pop(CALL_PROPERTY, None)
            large = [prop for prop, (value, _) in batch.items() if value is REREAD]
            for prop, (value, stamp) in batch.items():
                if value is not REREAD:
                    self._hand(prop, value, stamp)
            if large:  # too large to push: read here, out of band, and handed on the next round
                self._refresh(large)
            if call is not None:
                self._hand(CALL_PROPERTY, call[0], call[1])
                self._refresh(call[0].get("changes") if isinstance(call[0], dict) else None)

    def _check(self) -> None:
        if self._keepalive is None or self.mailbox.closed:
            return
        try:
            self._keepalive()
        except Exception as err:  # offline: tried again after the next quiet period
            log.info("subscription keepalive failed: %s", err)

    def _hand(self, prop: str, value: Any, stamp: float) -> None:
        try:
            self.callback(prop, value, stamp)
        except Exception:  # a broken callback must not end the subscription
            log.exception("subscription callback for %s failed", prop)

    def _refresh(self, names: list[str] | None) -> None:
        """Re-read what a call may have changed; the values go through the mailbox, so newer pushes win."""
        if names == []:
            return
        try:
            values = dict(self._reread(names))
        except Exception as err:  # offline or gone: the next announcement or renewal brings it back
            log.info("re-reading after a call failed: %s", err)
            return
        stamp = float(values.pop("__time__", 0.0))
        for prop, value in values.items():
            self.mailbox.put(prop, value, stamp)


class _Inbox:
    def __init__(self) -> None:
        self.listeners: dict[str, Listener] = {}
        self.mutex = threading.Lock()

    @expose
    def pyrolab_update(self, token: str, service: str, payload: dict[str, Any]) -> None:
        with self.mutex:
            listener = self.listeners.get(token)
        if listener is None or not isinstance(payload, dict):
            return
        for prop, change in payload.items():
            try:
                listener.put(str(prop), decode(change["value"]), float(change["time"]))
            except Exception as err:  # a malformed update spoils only itself
                log.warning("ignoring a malformed update of %s.%s: %s", service, prop, err)


class _Receiver:
    def __init__(self, host: str, security: Security | None) -> None:
        self.inbox = _Inbox()
        self.daemon = Daemon(host=host, port=0) if security is None else TlsThreadDaemon(host, 0, security)
        self.uri = str(self.daemon.register(self.inbox, "pyrolab.inbox"))
        self.thread = threading.Thread(target=self.daemon.requestLoop, name="pyrolab-inbox", daemon=True)
        self.thread.start()

    def add(self, token: str, listener: Listener) -> None:
        with self.inbox.mutex:
            self.inbox.listeners[token] = listener

    def remove(self, token: str) -> None:
        with self.inbox.mutex:
            listener = self.inbox.listeners.pop(token, None)
        if listener is not None:
            listener.close()


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
