"""Pyro5 proxies lent to whichever thread calls: Pyro5 ties a proxy to the thread that made it.

Every proxy this library makes carries the client's identity in the handshake,
a finite timeout and the marshal serializer (raw bytes on the wire).
"""

from __future__ import annotations

import threading

from Pyro5.api import Proxy

from pyrolab_jupyter.core.connections import client_handshake, keep_alive
from pyrolab_jupyter.core.wire import register_error_types

__all__ = ["ProxyPool", "new_proxy"]

_IDLE_PROXIES = 4
_SERIALIZER = "marshal"  # raw bytes on the wire, and in the standard library


class _LabProxy(Proxy):  # type: ignore[misc]
    """A Pyro5 proxy whose connection is reaped when the daemon goes silent (a cut link)."""

    def _pyroValidateHandshake(self, response: object) -> None:  # noqa: N802 (Pyro5's name)
        super()._pyroValidateHandshake(response)
        if self._pyroConnection is not None:
            keep_alive(self._pyroConnection.sock)


def new_proxy(uri: str, timeout: float) -> Proxy:
    register_error_types()
    proxy = _LabProxy(uri)
    proxy._pyroTimeout = timeout
    proxy._pyroSerializer = _SERIALIZER
    proxy._pyroHandshake = client_handshake()
    return proxy


class ProxyPool:
    """Proxies lent to one thread at a time; idle ones keep their connection."""

    def __init__(self, uri: str, timeout: float) -> None:
        self.uri = uri
        self.timeout = timeout
        self._idle: list[Proxy] = []
        self._mutex = threading.Lock()

    def acquire(self) -> Proxy:
        with self._mutex:
            proxy = self._idle.pop() if self._idle else None
        if proxy is None:
            return new_proxy(self.uri, self.timeout)
        proxy._pyroClaimOwnership()
        if proxy._pyroTimeout != self.timeout:
            proxy._pyroTimeout = self.timeout
        return proxy

    def release(self, proxy: Proxy) -> None:
        with self._mutex:
            if str(proxy._pyroUri) == self.uri and len(self._idle) < _IDLE_PROXIES:
                self._idle.append(proxy)
                return
        self.discard(proxy)

    @staticmethod
    def discard(proxy: Proxy) -> None:
        proxy._pyroClaimOwnership()
        proxy._pyroRelease()

    def reset(self, uri: str) -> None:
        with self._mutex:
            idle, self._idle = self._idle, []
            self.uri = uri
        for proxy in idle:
            self.discard(proxy)

    @property
    def local_host(self) -> str:
        """The local address this process uses to reach the daemon (for callbacks)."""
        proxy = self.acquire()
        try:
            proxy._pyroBind()
            return str(proxy._pyroConnection.sock.getsockname()[0])
        finally:
            self.release(proxy)
