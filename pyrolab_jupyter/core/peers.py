"""One client connection as the guarded server holds it: received bytes, complete messages, the reply path.

The selector thread fills ``buffer`` and ``frames``; a worker hands one
message at a time to Pyro5's own handshake and request handling through
``recv``, and Pyro5 answers through ``send``, which never blocks past
``send_timeout`` (a client that does not read its replies is cut, not waited for).
"""

from __future__ import annotations

import collections
import select
import selectors
import socket
import ssl
import struct
import sys
import time
from typing import Any

from Pyro5 import errors
from Pyro5.socketutil import SocketConnection

from pyrolab_jupyter.core.frames import Header

__all__ = ["Peer", "keepalive"]


class Peer(SocketConnection):  # type: ignore[misc]
    """A client connection: its buffer and complete messages (selector side), the message in hand (worker side)."""

    def __init__(self, sock: socket.socket, peer: str, send_timeout: float, address: Any = None) -> None:
        super().__init__(sock)
        self.peer = peer
        self.address = address  # (host, port) as accepted: Pyro5 asks getpeername() again for every request
        self.owner = peer  # who may claim its out-of-band arrays (core.bulk); under TLS, its certificate
        self.send_timeout = send_timeout
        self.buffer = bytearray()
        self.header: Header | None = None
        self.frames: collections.deque[tuple[Header, bytes]] = collections.deque()
        self.greeted = False
        self.tls_pending = False  # a TLS connection whose handshake the selector is still driving
        self.bulk = False  # opened with core.bulk's MAGIC: carries raw array bytes, not Pyro5 messages
        self.last_active = time.monotonic()
        self.partial_since: float | None = None
        self.closed = False
        self.skip = 0  # bytes of a refused message still to read and drop
        self._poller: select.poll | None = None  # a worker's wait for this connection's next message
        self.lent = False  # blocking, with kernel timeouts, for a worker's turn (lend)
        self._timed = False
        self._frame = memoryview(b"")

    # what Pyro5's handshake and handleRequest read and write through

    def recv(self, size: int) -> bytes:
        if size > len(self._frame):
            raise errors.ConnectionClosedError("message ended early")
        data, self._frame = bytes(self._frame[:size]), self._frame[size:]
        return data

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + self.send_timeout
        while view:
            try:
                sent = self.sock.send(view)
                view = view[sent:]
                continue
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
            except OSError as err:
                raise errors.ConnectionClosedError(f"cannot send: {err}") from None
            left = deadline - time.monotonic()
            if left <= 0 or not _wait_writable(self.sock, left):
                raise errors.TimeoutError(f"{self.peer} did not take a reply within {self.send_timeout:g} s")

    def receive(self, size: int) -> bytes | None:
        """What the (non-blocking) socket has now: bytes, ``b""`` once the peer closed, None while nothing is
        there. On TLS, also what OpenSSL has already decrypted, which no selector or poll can see."""
        try:
            chunk: bytes = self.sock.recv(size)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        while chunk and _tls_pending(self.sock):
            try:
                chunk += self.sock.recv(size)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
        return chunk

    def readable(self, timeout: float) -> bool:
        """Whether something arrives within ``timeout`` seconds (poll where there is one: no fd limit)."""
        if _tls_pending(self.sock):  # decrypted already: poll would not see it
            return True
        if not hasattr(select, "poll"):  # Windows
            return bool(select.select([self.sock], [], [], timeout)[0])
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self.sock, select.POLLIN)
        return bool(self._poller.poll(timeout * 1000))

    def lend(self, linger: float) -> bool:
        """Block for a worker's turn (plain TCP on Linux): its wait for the next message is then one ``recv``
        that the kernel ends after ``linger`` seconds (``SO_RCVTIMEO``), not a poll and a recv; a reply that
        cannot go out within ``send_timeout`` still ends (``SO_SNDTIMEO``). False where that does not apply."""
        if not _KERNEL_TIMEOUTS or isinstance(self.sock, ssl.SSLSocket) or self.sock.family == socket.AF_UNIX:
            return False
        try:
            if not self._timed:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(linger))
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(min(self.send_timeout, 60.0)))
                self._timed = True
            self.sock.setblocking(True)
        except OSError:
            return False
        self.lent = True
        return True

    def unlend(self) -> None:
        """Back to non-blocking, for the selector."""
        self.lent = False
        try:
            self.sock.setblocking(False)
        except OSError:  # closed meanwhile
            pass

    def hand(self, raw: bytes) -> None:
        self._frame = memoryview(raw)

    def close(self) -> None:
        self.closed = True
        super().close()


_KERNEL_TIMEOUTS = sys.platform.startswith("linux")  # SO_RCVTIMEO/SO_SNDTIMEO as a struct timeval


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1e6))


def _tls_pending(sock: socket.socket) -> int:
    pending = getattr(sock, "pending", None)
    return int(pending()) if pending is not None else 0


def keepalive(sock: socket.socket, idle: float, interval: float = 5.0, count: int = 3) -> None:
    """Give up on a peer that went silent (cable pulled, Wi-Fi gone: no FIN, no RST), this socket only.

    TCP keepalive probes after ``idle`` seconds of silence, ``count`` of them
    ``interval`` apart; unacknowledged data (a reply into a cut link) is given
    up after the same time plus 5 s. Set per socket, never through Pyro5's
    process-wide config; options the platform lacks are skipped.
    """
    options = [(socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
               (socket.IPPROTO_TCP, "TCP_KEEPIDLE", max(1, int(idle))),
               (socket.IPPROTO_TCP, "TCP_KEEPINTVL", max(1, int(interval))),
               (socket.IPPROTO_TCP, "TCP_KEEPCNT", max(1, count)),
               (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", int((idle + interval * count + 5) * 1000))]
    for level, name, value in options:
        option = getattr(socket, name, None)
        if option is None:
            continue
        try:
            sock.setsockopt(level, option, value)
        except OSError:  # not TCP (a Unix socket), or a platform that refuses the value
            return


def _wait_writable(sock: socket.socket, timeout: float) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_WRITE)
        return bool(sel.select(timeout))
