"""Large numpy arrays out of band: raw bytes on a connection of their own, straight into the array.

Through Pyro5 a 10 MB array is copied five times or more (``tobytes``, the
marshal encoding, the server's receive buffer, the frame, ``frombuffer``) and
cannot exceed the 128 MiB message cap. Here an array of at least ``BULK_MIN``
bytes travels as a ticket inside the call (dtype, shape, order, size, a random
token) while its bytes go over a second connection to the daemon's own port,
one that opens with ``MAGIC`` instead of a Pyro5 handshake. The receiver
allocates the array once and ``recv_into`` fills it; the sender sends from
the array's own memory. So each side holds about two copies at most, and the
guarded server's limits still apply: the connection counts against the
per-peer caps, a stalled transfer is cut after ``frame_timeout``, one array
may be ``max_bulk`` bytes, unclaimed ones are dropped after ``_EXPIRY``, and a
ticket is claimed only by the caller that made it: the same address, or under
TLS the same certificate (CN and role). Under TLS the second connection is
mutual TLS with the proxies' own ``Security`` (the daemon handshakes it in its
accept like any other connection and checks the daemon's role): arrays never
go in clear, and a plain bulk connection to a TLS daemon is refused.

Requests are 40 bytes: ``MAGIC``, op (``G`` fetch a result, ``P`` upload an
argument), 3 zero bytes, a 16-byte token, the size (8 bytes big-endian), 8
zero bytes. Answers are 16 bytes: ``OK\\0\\0`` or ``ERR\\0``, 4 zero bytes,
a length; then that many bytes (the array, a token, or an error's text).
An upload waits for an ``OK`` before it sends its bytes, so a refused one
costs nothing.

Who does not speak this (a stock Pyro5 client, an older daemon) gets arrays
inside the message as before; the reason is logged once.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import struct
import threading
import time
from typing import Any, Literal, Protocol

import numpy as np
from Pyro5 import errors

from pyrolab_jupyter.core.errors import PyroLabError
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.tls import connect_tls

__all__ = [
    "BULK_MIN", "MAGIC", "REQUEST_SIZE", "BulkError", "BulkSide", "Channel", "Stash", "read_request", "serve_turn",
]

log = logging.getLogger(__name__)

MAGIC = b"PLBK"
BULK_MIN = 256 * 1024  # smaller arrays go inside the message: the extra round trip would cost more
REQUEST_SIZE = 40
_REQUEST = struct.Struct(">4s1s3x16sQ8x")
_ANSWER = struct.Struct(">4s4xQ")
_OK, _ERR = b"OK\0\0", b"ERR\0"
_GET, _PUT = b"G", b"P"
_EXPIRY = 60.0  # seconds a result or an upload waits to be claimed
_MAX_TICKETS = 256  # unclaimed results per server
_MAX_ERROR = 500
_CHUNK = 4 * 1024 * 1024


class BulkError(PyroLabError, ConnectionError):
    """An array's transfer out of band failed or was refused (the message says why)."""


class BulkSide(Protocol):
    """What ``serialization.encode``/``decode`` need from either end: send an array, receive one."""

    def put(self, arr: np.ndarray) -> dict[str, Any] | None: ...  # the ticket fields, or None: inline
    def get(self, ticket: dict[str, Any]) -> np.ndarray: ...


def wire_view(arr: np.ndarray) -> tuple[np.ndarray, Literal["C", "F"]]:
    """A flat uint8 view of the array's bytes in C or F order (copied only when it is neither)."""
    if arr.flags.f_contiguous and not arr.flags.c_contiguous:
        return arr.T.reshape(-1).view(np.uint8), "F"
    data = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    return data.reshape(-1).view(np.uint8), "C"


def _shape(ticket: dict[str, Any], dtype: np.dtype[Any]) -> tuple[tuple[int, ...], Literal["C", "F"], int]:
    shape = tuple(int(n) for n in ticket["shape"])
    order: Literal["C", "F"] = "F" if ticket.get("order") == "F" else "C"
    nbytes = int(ticket["nbytes"])
    if any(n < 0 for n in shape) or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != nbytes:
        raise ValueError(f"a bulk ticket's shape {shape} and dtype {dtype} do not make {nbytes} bytes")
    return shape, order, nbytes


def _as_array(flat: np.ndarray, dtype: np.dtype[Any], shape: tuple[int, ...], order: str) -> np.ndarray:
    """Reinterpret received bytes as the array (no copy)."""
    typed = flat.view(dtype) if flat.size else np.empty(0, dtype)
    return typed.reshape(shape[::-1]).T if order == "F" else typed.reshape(shape)


def _recv_exact(sock: socket.socket, into: memoryview, deadline: float | None = None) -> None:
    """Fill ``into``; the socket's timeout bounds each wait, ``deadline`` (monotonic) the whole transfer."""
    got = 0
    while got < len(into):
        n = sock.recv_into(into[got:], min(len(into) - got, _CHUNK))
        if not n:
            raise BulkError(f"connection closed after {got} of {len(into)} bytes")
        got += n
        if deadline is not None and got < len(into) and time.monotonic() > deadline:
            raise BulkError(f"too slow: {got} of {len(into)} bytes arrived in time")


def _send_all(sock: socket.socket, data: memoryview, deadline: float | None = None) -> None:
    """Send in chunks: Python's ``sendall`` timeout bounds the whole call, which a large array on a slow
    link would exceed; here the socket's timeout bounds each chunk and ``deadline`` the whole transfer."""
    for start in range(0, len(data), _CHUNK):
        if deadline is not None and time.monotonic() > deadline:
            raise BulkError(f"too slow: {start} of {len(data)} bytes taken in time")
        sock.sendall(data[start:start + _CHUNK])


def _still_open(sock: socket.socket) -> bool:
    """An idle connection with something to read has been closed by the daemon (it never speaks unasked)."""
    try:
        if hasattr(select, "poll"):  # no limit on descriptor numbers, unlike select()
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return not poller.poll(0)
        return not select.select([sock], [], [], 0)[0]  # Windows
    except (OSError, ValueError):
        return False


def _answer(sock: socket.socket) -> bytes:
    head = bytearray(_ANSWER.size)
    _recv_exact(sock, memoryview(head))
    status, length = _ANSWER.unpack(head)
    if status == _OK:
        return b"" if length == 0 else _read_small(sock, length)
    if status == _ERR and length <= _MAX_ERROR:
        raise BulkError(_read_small(sock, length).decode("utf-8", "replace"))
    raise BulkError("the daemon answered the bulk request with something else")


def _read_small(sock: socket.socket, length: int) -> bytes:
    if length > 4096:
        raise BulkError(f"unexpected answer of {length} bytes")
    buf = bytearray(length)
    _recv_exact(sock, memoryview(buf))
    return bytes(buf)


# the daemon's side


class Stash:
    """Arrays waiting for their other half: results to be fetched, uploads to be claimed by a call."""

    def __init__(self, max_bulk: int) -> None:
        self.max_bulk = max_bulk
        self._results: dict[bytes, tuple[np.ndarray, str, float]] = {}
        self._uploads: dict[bytes, tuple[np.ndarray, str, float]] = {}
        self._uploading = 0  # bytes of uploads in progress or waiting
        self._mutex = threading.Lock()
        self._told: set[str] = set()

    def offer(self, arr: np.ndarray, owner: str) -> dict[str, Any] | None:
        """Keep a result for ``owner`` to fetch: a copy (services often reuse their buffers: the caller gets
        the array as it was returned, as through the message), unless the service returned it read-only."""
        if arr.nbytes > self.max_bulk:
            return None
        flat, order = wire_view(arr)
        own = not (arr.flags.c_contiguous or arr.flags.f_contiguous)  # wire_view copied it already
        kept = flat if own or not arr.flags.writeable else flat.copy()
        token = os.urandom(16)
        with self._mutex:
            if len(self._results) >= _MAX_TICKETS:
                return None
            self._results[token] = (kept, owner, time.monotonic() + _EXPIRY)
        return {"token": token, "order": order, "nbytes": arr.nbytes}

    def claim(self, ticket: dict[str, Any], owner: str) -> np.ndarray:
        """An uploaded argument, as the array the ticket describes (``ValueError`` naming what is wrong)."""
        token = ticket.get("token")
        if not isinstance(token, bytes):
            token = b""
        with self._mutex:
            entry = self._uploads.get(token)
            if entry is not None and entry[1] == owner:  # another caller's attempt leaves it in place
                del self._uploads[token]
                self._uploading -= entry[0].size
        if entry is None or entry[1] != owner:
            raise ValueError("the uploaded array is unknown here (expired after 60 s, claimed already, or "
                             "sent from another address or certificate); call again")
        dtype = np.lib.format.descr_to_dtype(ticket["descr"])
        shape, order, nbytes = _shape(ticket, dtype)
        if nbytes != entry[0].size:
            raise ValueError(f"the ticket says {nbytes} bytes but {entry[0].size} were uploaded")
        return _as_array(entry[0], dtype, shape, order)

    def fetch(self, token: bytes, owner: str) -> np.ndarray | str:
        """A result's bytes, or why not."""
        with self._mutex:
            entry = self._results.get(token)
            if entry is None or entry[1] != owner:
                return ("no such array here (fetched already, expired after 60 s, or asked from another "
                        "address or certificate)")
            del self._results[token]
        return entry[0]

    def reserve(self, nbytes: int) -> str | None:
        """Room for an upload of ``nbytes``, or why not."""
        with self._mutex:
            if nbytes > self.max_bulk or self._uploading + nbytes > self.max_bulk:
                return (f"an upload of {nbytes} bytes does not fit (max_bulk {self.max_bulk} bytes, "
                        f"{self._uploading} in use); send smaller arrays or raise Limits.max_bulk")
            self._uploading += nbytes
        return None

    def unreserve(self, nbytes: int) -> None:
        with self._mutex:
            self._uploading -= nbytes

    def keep(self, buf: np.ndarray, owner: str) -> bytes:
        token = os.urandom(16)
        with self._mutex:
            self._uploads[token] = (buf, owner, time.monotonic() + _EXPIRY)
        return token

    def expire(self) -> None:
        now = time.monotonic()
        with self._mutex:
            for table in (self._results, self._uploads):
                for token in [t for t, (_, _, until) in table.items() if until < now]:
                    buf = table.pop(token)[0]
                    if table is self._uploads:
                        self._uploading -= buf.size

    def told(self, owner: str) -> bool:
        """True the first time only (per address): the reason for inline arrays is logged once."""
        with self._mutex:
            if owner in self._told or len(self._told) > 1000:
                return False
            self._told.add(owner)
            return True


class ServerSide:
    """The daemon's ``BulkSide`` for one call: results offered to, and uploads claimed by, its caller."""

    def __init__(self, stash: Stash, owner: str, capable: bool) -> None:
        self.stash, self.owner, self.capable = stash, owner, capable

    def put(self, arr: np.ndarray) -> dict[str, Any] | None:
        if not self.capable:
            if self.stash.told(self.owner):
                log.info("arrays for %s go inside the message (its client does not speak the bulk path: a "
                         "stock Pyro5 client?); above max_message they cannot be sent", self.owner)
            return None
        return self.stash.offer(arr, self.owner)

    def get(self, ticket: dict[str, Any]) -> np.ndarray:
        return self.stash.claim(ticket, self.owner)


_serving = threading.local()


def serving(stash: Stash | None, owner: str) -> None:
    """Note which stash and caller address this worker thread serves (the transport calls this)."""
    _serving.sides = None if stash is None else (ServerSide(stash, owner, False), ServerSide(stash, owner, True))


def server_side(capable: bool) -> ServerSide | None:
    """The current call's ``BulkSide`` (None outside a guarded server's worker); made once per turn of a
    connection, not per call."""
    sides: tuple[ServerSide, ServerSide] | None = getattr(_serving, "sides", None)
    return None if sides is None else sides[capable]


def serve_turn(sock: socket.socket, request: bytes, stash: Stash, owner: str, timeout: float,
               min_rate: float = 1024 * 1024) -> bool:
    """Answer one bulk request on a worker; False when the connection must close.

    ``sock`` is blocking for the turn with ``timeout`` per send or receive (a
    stalled peer is cut), and a transfer must keep ``min_rate`` bytes/s on
    average after its first ``timeout`` seconds (a trickling peer is cut, as
    the guarded server cuts slow senders); the transport makes it non-blocking again after.
    """
    try:
        magic, op, token, nbytes = _REQUEST.unpack(request)
    except struct.error:
        return False
    if magic != MAGIC:
        return False
    sock.settimeout(timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # an answer's head and its bytes go out at once
    if op == _GET:
        data = stash.fetch(token, owner)
        if isinstance(data, str):
            _refuse(sock, data)
            return True
        sock.sendall(_ANSWER.pack(_OK, data.size))
        _send_all(sock, data.data, time.monotonic() + timeout + data.size / min_rate)
        return True
    if op == _PUT:
        why = stash.reserve(nbytes)
        if why is not None:
            _refuse(sock, why)
            return True
        try:
            buf = np.empty(nbytes, np.uint8)
            sock.sendall(_ANSWER.pack(_OK, 0))
            _recv_exact(sock, buf.data, time.monotonic() + timeout + nbytes / min_rate)
        except BaseException:
            stash.unreserve(nbytes)
            raise
        token = stash.keep(buf, owner)
        sock.sendall(_ANSWER.pack(_OK, len(token)) + token)
        return True
    return False


def read_request(sock: socket.socket, timeout: float) -> bytes | None:
    """The next 40-byte request of a bulk connection that has something to read; None when it closed."""
    sock.settimeout(timeout)
    head = bytearray(REQUEST_SIZE)
    try:
        _recv_exact(sock, memoryview(head))
    except BulkError:
        return None
    return bytes(head)


def _refuse(sock: socket.socket, why: str) -> None:
    text = why.encode()[:_MAX_ERROR]
    sock.sendall(_ANSWER.pack(_ERR, len(text)) + text)


# the client's side


class Channel:
    """A client's ``BulkSide`` for one daemon: uploads arguments, fetches results (one idle socket kept)."""

    def __init__(self, host: str, port: int, timeout: float, security: Security | None = None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.security = security  # with it, mutual TLS like the call's own proxies
        self.usable = True  # False once the daemon showed it does not speak the bulk path
        self._idle: list[socket.socket] = []
        self._mutex = threading.Lock()

    def _socket(self) -> tuple[socket.socket, bool]:
        """A connection (an idle one the daemon has not closed, else a new one) and whether it is new."""
        while True:
            with self._mutex:
                sock = self._idle.pop() if self._idle else None
            if sock is None:
                break
            if _still_open(sock):
                sock.settimeout(self.timeout)
                return sock, False
            sock.close()  # closed by the daemon while idle (idle_timeout, restart)
        if self.security is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, True
        try:
            return connect_tls(self.host, self.port, self.security, self.timeout), True
        except errors.CommunicationError as err:  # not a lab daemon's certificate
            raise BulkError(str(err)) from None

    def _release(self, sock: socket.socket) -> None:
        with self._mutex:
            if len(self._idle) < 2:
                self._idle.append(sock)
                return
        sock.close()

    def put(self, arr: np.ndarray) -> dict[str, Any] | None:
        if not self.usable or arr.nbytes == 0:
            return None
        flat, order = wire_view(arr)
        try:
            sock, new = self._socket()
        except OSError as err:
            raise BulkError(f"cannot open a bulk connection to {self.host}:{self.port}: {err}") from None
        try:
            sock.sendall(_REQUEST.pack(MAGIC, _PUT, bytes(16), flat.size))
            try:
                _answer(sock)
            except (BulkError, OSError) as err:
                if not new or (isinstance(err, BulkError) and "does not fit" in str(err)):
                    raise
                self.usable = False  # not a pyrolab-jupyter daemon of this version: it closed on us
                log.info("%s:%s does not take bulk uploads (%s); arrays go inside the message",
                         self.host, self.port, err)
                sock.close()
                return None
            _send_all(sock, flat.data)
            token = _answer(sock)
        except OSError as err:
            sock.close()
            raise BulkError(f"sending an array of {arr.nbytes} bytes to {self.host}:{self.port} failed: {err}; "
                            "call again") from None
        except BaseException:
            sock.close()
            raise
        self._release(sock)
        return {"token": token, "order": order, "nbytes": arr.nbytes}

    def get(self, ticket: dict[str, Any]) -> np.ndarray:
        dtype = np.lib.format.descr_to_dtype(ticket["descr"])
        shape, order, nbytes = _shape(ticket, dtype)
        try:
            return self._fetch(bytes(ticket["token"]), nbytes, np.empty(shape, dtype, order=order))
        except OSError as err:
            raise BulkError(f"fetching an array of {nbytes} bytes from {self.host}:{self.port} failed: {err}; "
                            "call again") from None

    def _fetch(self, token: bytes, nbytes: int, out: np.ndarray) -> np.ndarray:
        flat, _ = wire_view(out)
        sock, _ = self._socket()
        try:
            sock.sendall(_REQUEST.pack(MAGIC, _GET, token[:16].ljust(16, b"\0"), nbytes))
            head = bytearray(_ANSWER.size)
            _recv_exact(sock, memoryview(head))
            status, length = _ANSWER.unpack(head)
            if status == _ERR and length <= _MAX_ERROR:
                raise BulkError(_read_small(sock, length).decode("utf-8", "replace"))
            if status != _OK or length != nbytes:
                raise BulkError(f"the daemon offered {length} bytes for an array of {nbytes}")
            _recv_exact(sock, flat.data)
        except BaseException:
            sock.close()
            raise
        self._release(sock)
        return out

    def close(self) -> None:
        with self._mutex:
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()

    def __del__(self) -> None:  # a RemoteService dropped without disconnect(): close quietly
        for sock in getattr(self, "_idle", ()):
            sock.close()
