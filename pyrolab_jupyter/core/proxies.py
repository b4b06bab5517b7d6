"""Pyro5 proxies lent to whichever thread calls: Pyro5 ties a proxy to the thread that made it.

Every proxy this library makes carries the client's identity in the handshake,
a finite timeout and the marshal serializer (raw bytes on the wire). Each call
also tells the daemon, in Pyro5 annotations, how long the caller waits (so a
busy service answers ``ServiceBusy`` in time) and whether this process believes
it holds the service's lock (so a lock the daemon lost is reported, ``LockLost``).
Given a ``Security``, it connects over mutual TLS (``TlsProxy``).
"""

from __future__ import annotations

import select
import threading
import time
from typing import Any

from Pyro5.api import URI, Proxy
from Pyro5.callcontext import current_context

from pyrolab_jupyter.core import lane
from pyrolab_jupyter.core.audit import NOTEBOOK_ANNOTATION
from pyrolab_jupyter.core.bulk import Channel
from pyrolab_jupyter.core.connections import client_handshake
from pyrolab_jupyter.core.limits import Limits
from pyrolab_jupyter.core.peers import keepalive
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.tls import TlsProxy
from pyrolab_jupyter.core.wire import BULK, HOLDS_LOCK, WAIT, register_error_types

__all__ = ["ProxyPool", "forget_lock", "hold_lock", "new_proxy"]

_IDLE_PROXIES = 4
_FRESH = 0.5  # a proxy given back this recently is lent without asking its socket whether the daemon closed it
# (a daemon that did, in that half second, is found by the call itself: ConnectionClosed, then one retry)
_SERIALIZER = "marshal"  # raw bytes on the wire, and in the standard library
_held: dict[str, float | None] = {}  # service name -> lease end (epoch seconds) of the locks this process holds


def hold_lock(service: str, expires: float | None) -> None:
    """Remember that this process holds ``service``'s lock (until ``expires``)."""
    _held[service] = expires


def forget_lock(service: str) -> None:
    _held.pop(service, None)


class _LabProxy(Proxy):  # type: ignore[misc]
    """Each call sets exactly its own annotations (Pyro5 takes them from a thread-local), and the
    connection is given up when the daemon goes silent (a cut link: no FIN, no RST). To a daemon of this
    library, calls take the lean path (``core.lane``)."""

    _pyrolab_lane = False  # set per connection from the daemon's handshake answer
    _pyrolab_wait: tuple[float, bytes] = (-1.0, b"")  # the timeout and its annotation chunk, made once

    def _pyroValidateHandshake(self, response: object) -> None:  # noqa: N802 (Pyro5's name)
        super()._pyroValidateHandshake(response)
        object.__setattr__(self, "_pyrolab_lane", response == lane.HELLO)
        if self._pyroConnection is not None:
            keepalive(self._pyroConnection.sock, Limits.keepalive)

    def _pyrolab_holds_lock(self) -> bool:
        """Whether this process believes it holds the service's lock (the daemon then reports a lost one)."""
        expires = _held.get(self._pyroUri.object, 0.0) if _held and self._pyroUri is not None else 0.0
        return expires is None or bool(expires and expires > time.time())

    def _pyrolab_notes(self, note: bytes | None) -> dict[str, bytes]:
        notes: dict[str, bytes] = {WAIT: f"{self._pyroTimeout or 0:g}".encode(), BULK: b""}
        if self._pyrolab_holds_lock():
            notes[HOLDS_LOCK] = b"1"
        if note is not None:  # the kernel's cell, for the audit trail (set by RemoteService)
            notes[NOTEBOOK_ANNOTATION] = note
        return notes

    def _pyroInvoke(self, *args: Any, **kwargs: Any) -> Any:
        before = current_context.annotations
        current_context.annotations = self._pyrolab_notes(before.get(NOTEBOOK_ANNOTATION))
        try:
            return super()._pyroInvoke(*args, **kwargs)
        finally:
            current_context.annotations = before

    def _pyrolab_invoke(self, method: str, vargs: Any, kwargs: dict[str, Any], note: bytes | None = None) -> Any:
        """A call of ours: on the lean path to a daemon of this library, else through Pyro5."""
        if self._pyroConnection is None:
            self._pyroBind()
        if not self._pyrolab_lane:
            where = str(self._pyroUri.location) if self._pyroUri is not None else "?"
            lane.tell_once(where, "calls to %s go through Pyro5's own request path: it is not a pyrolab-jupyter "
                           "daemon (or an older one)", where)
            return self._pyrolab_through_pyro5(method, vargs, kwargs, note)
        timeout = self._pyroTimeout or 0
        if self._pyrolab_wait[0] != timeout:
            object.__setattr__(self, "_pyrolab_wait", (timeout, lane.chunks(
                {WAIT: f"{timeout:g}".encode(), BULK: b""})))
        notes = self._pyrolab_wait[1]
        if self._pyrolab_holds_lock():
            notes += lane.chunks({HOLDS_LOCK: b"1"})
        if note is not None:
            notes += lane.chunks({NOTEBOOK_ANNOTATION: note})
        try:
            return lane.invoke(self, method, vargs, kwargs, notes)
        except lane.NotOnLane as why:
            lane.tell_once(f"value:{method}", "%s: a value marshal cannot carry goes through Pyro5's serializer (%s)",
                           method, why)
            return self._pyrolab_through_pyro5(method, vargs, kwargs, note)

    def _pyrolab_through_pyro5(self, method: str, vargs: Any, kwargs: dict[str, Any], note: bytes | None) -> Any:
        before = current_context.annotations
        current_context.annotations = {NOTEBOOK_ANNOTATION: note} if note is not None else {}
        try:
            return self._pyroInvoke(method, vargs, kwargs)
        finally:
            current_context.annotations = before


class _LabTlsProxy(TlsProxy, _LabProxy):
    """``_LabProxy`` over mutual TLS."""


def new_proxy(uri: str, timeout: float, security: Security | None = None, daemon_only: bool = True) -> Proxy:
    """A proxy for ``uri``; over TLS with ``security`` (to a ``daemon`` certificate unless ``daemon_only=False``)."""
    register_error_types()
    proxy = _LabProxy(uri) if security is None else _LabTlsProxy(uri, security, daemon_only)
    proxy._pyroTimeout = timeout
    proxy._pyroSerializer = _SERIALIZER
    proxy._pyroHandshake = client_handshake()
    return proxy


def _still_open(proxy: Proxy) -> bool:
    """False when the server has closed an idle proxy's connection: a Pyro5 server never speaks unasked,
    so an idle connection with something to read has been closed (or broken)."""
    conn = proxy._pyroConnection
    if conn is None:
        return True  # not connected yet: it connects on first use
    try:
        if hasattr(select, "poll"):  # no limit on descriptor numbers, unlike select()
            poller = select.poll()
            poller.register(conn.sock, select.POLLIN)
            return not poller.poll(0)
        return not select.select([conn.sock], [], [], 0)[0]  # Windows
    except (OSError, ValueError):
        return False


class ProxyPool:
    """Proxies lent to one thread at a time; idle ones keep their connection."""

    def __init__(self, uri: str, timeout: float, security: Security | None = None) -> None:
        self.uri = uri
        self.timeout = timeout
        self.security = security
        self._idle: list[tuple[Proxy, float]] = []  # and when each was given back
        self._generation = 0
        self._mutex = threading.Lock()
        self._channel: Channel | None = None

    def acquire(self) -> Proxy:
        while True:
            with self._mutex:
                proxy, since = self._idle.pop() if self._idle else (None, 0.0)
            if proxy is None:
                proxy = new_proxy(self.uri, self.timeout, self.security)
                object.__setattr__(proxy, "_pyrolab_generation", self._generation)  # Proxy's own setattr is remote
                return proxy
            if time.monotonic() - since < _FRESH or _still_open(proxy):
                break
            self.discard(proxy)  # the server closed it while idle (idle timeout, restart)
        proxy._pyroClaimOwnership()
        if proxy._pyroTimeout != self.timeout:
            proxy._pyroTimeout = self.timeout
        return proxy

    def release(self, proxy: Proxy) -> None:
        with self._mutex:
            if getattr(proxy, "_pyrolab_generation", None) == self._generation and len(self._idle) < _IDLE_PROXIES:
                self._idle.append((proxy, time.monotonic()))
                return
        self.discard(proxy)

    @staticmethod
    def discard(proxy: Proxy) -> None:
        proxy._pyroClaimOwnership()
        proxy._pyroRelease()

    def reset(self, uri: str) -> None:
        with self._mutex:
            idle, self._idle = self._idle, []
            channel, self._channel = self._channel, None
            self.uri = uri
            self._generation += 1  # proxies lent before this are not taken back
        for proxy, _ in idle:
            self.discard(proxy)
        if channel is not None:
            channel.close()

    @property
    def channel(self) -> Channel:
        """The daemon's bulk path (``core.bulk``): large arrays out of band, on the daemon's own port."""
        with self._mutex:
            if self._channel is None:
                where = URI(self.uri)
                self._channel = Channel(where.host, where.port, self.timeout, self.security)
            self._channel.timeout = self.timeout
            return self._channel

    @property
    def local_host(self) -> str:
        """The local address this process uses to reach the daemon (for callbacks)."""
        proxy = self.acquire()
        try:
            proxy._pyroBind()
            return str(proxy._pyroConnection.sock.getsockname()[0])
        finally:
            self.release(proxy)
