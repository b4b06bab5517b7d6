"""The socket server under every daemon and nameserver: one selector thread, a bounded pool of workers.

Pyro5's thread server gives each connection a thread for its whole life (80
at most): 81 idle sockets freeze a port, and every one-way call starts a
thread. Here a connection costs a thread only while a complete message of it
is being handled. The selector thread accepts (per-peer and total caps),
reads whatever arrived into the connection's buffer, refuses a bad header at
once (``core.frames``), cuts a partial message that does not complete in time
(slow senders) and connections idle too long (unless the daemon says a lock
or a session instance depends on it). Complete messages go to the pool, which
runs Pyro5's own handshake and request handling on them; one-way calls run in
the pool too (in order, no thread each). Given a ``Security``, every
connection is mutual TLS; the selector thread drives each handshake a step per
readable event (no thread is held, a silent peer is cut like a slow sender).
"""

from __future__ import annotations

import collections
import logging
import queue
import resource
import select
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from Pyro5 import errors, protocol, serializers
from Pyro5.callcontext import current_context
from Pyro5.server import _get_attribute, _set_exposed_property_value
from Pyro5.socketutil import SocketConnection

from pyrolab_jupyter.core.errors import InvalidArgument
from pyrolab_jupyter.core.frames import (
    DEFAULT_MAX_MESSAGE,
    HEADER_SIZE,
    FrameError,
    Header,
    check_body,
    parse_header,
)
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.tls import handshake_step, start_server_tls

__all__ = ["GuardedServer", "Limits"]

log = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024
_TICK = 0.25
_SMALL = 64 * 1024  # a partial message this small is read on even when the memory budget is spent
_LINGER = 0.002  # seconds a worker waits for a connection's next message before handing it back


@dataclass(frozen=True)
class Limits:
    """What one server grants the network; the one home of these defaults.

    ``max_message``: bytes per message (declared size refused from the header).
    ``max_connections`` (clipped to the open-file limit) and ``max_per_peer``
    (per client address: a lab's notebooks often share a host). A connection
    with nothing to say for ``idle_timeout`` seconds is closed (not one a lock
    or a session instance depends on); a message must arrive within
    ``frame_timeout`` plus its size at ``min_rate`` bytes/s; a reply must be
    taken within ``send_timeout``. ``workers`` threads handle messages. A peer that vanished without
    closing (power cut, cable pulled) is found by TCP keepalive probes after ``keepalive`` seconds of
    silence (then 3 probes 10 s apart), so its connection, and any lock it held, does not stay forever.
    """

    max_message: int = DEFAULT_MAX_MESSAGE
    max_connections: int = 4096
    max_per_peer: int = 256
    idle_timeout: float = 300.0
    frame_timeout: float = 10.0
    min_rate: float = 1024 * 1024
    send_timeout: float = 60.0
    workers: int = 128
    max_buffered: int = 512 * 1024 * 1024
    keepalive: float = 60.0

    def connection_cap(self) -> int:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        room = self.max_connections if soft == resource.RLIM_INFINITY else min(self.max_connections, soft - 64)
        return max(1, room)


class _Pool:
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
            except Exception:
                log.exception("a worker job failed")

    def shutdown(self) -> None:
        with self._mutex:
            count = self._threads
        for _ in range(count):
            self._jobs.put(None)


class _Conn(SocketConnection):  # type: ignore[misc]
    """A client connection: its buffer and complete messages (selector side), the message in hand (worker side)."""

    def __init__(self, sock: socket.socket, peer: str, send_timeout: float) -> None:
        super().__init__(sock)
        self.peer = peer
        self.send_timeout = send_timeout
        self.buffer = bytearray()
        self.header: Header | None = None
        self.frames: collections.deque[tuple[Header, bytes]] = collections.deque()
        self.greeted = False
        self.tls_pending = False  # a TLS connection whose handshake the selector is still driving
        self.last_active = time.monotonic()
        self.partial_since: float | None = None
        self.closed = False
        self.skip = 0  # bytes of a refused message still to read and drop
        self.poller: select.poll | None = None  # a worker's wait for this connection's next message
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

    def hand(self, raw: bytes) -> None:
        self._frame = memoryview(raw)

    def close(self) -> None:
        self.closed = True
        super().close()


def _tls_pending(sock: socket.socket) -> int:
    pending = getattr(sock, "pending", None)
    return int(pending()) if pending is not None else 0


def _recv(sock: socket.socket) -> bytes | None:
    """What a non-blocking socket has now: bytes, ``b""`` once the peer closed, None while nothing is there.

    On TLS, also what OpenSSL has already decrypted: no selector or poll can see those bytes.
    """
    try:
        chunk = sock.recv(_READ_CHUNK)
    except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    while chunk and _tls_pending(sock):
        try:
            chunk += sock.recv(_READ_CHUNK)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            break
    return chunk


def _keepalive(sock: socket.socket, idle: float) -> None:
    """Probe a silent peer after ``idle`` seconds (where the platform lets us say so)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, int(idle)))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:  # not TCP (a Unix socket): nothing to probe
        pass


def _wait_writable(sock: socket.socket, timeout: float) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_WRITE)
        return bool(sel.select(timeout))


class GuardedServer:
    """Pyro5 transport server (``loop``/``shutdown``/``close``) with the limits of ``Limits``."""

    def __init__(self, daemon: Any, listener: socket.socket, location: str, limits: Limits,
                 security: Security | None = None) -> None:
        self.daemon = daemon
        self.security = security  # with it, every connection is mutual TLS, its handshake driven here
        self.sock: socket.socket | None = listener
        self.locationStr = location
        self.limits = limits
        self.shutting_down = False
        self._cap = limits.connection_cap()
        self._selector = selectors.DefaultSelector()
        self._conns: dict[int, _Conn] = {}
        self._per_peer: collections.Counter[str] = collections.Counter()
        self._buffered = 0
        self._returned: collections.deque[_Conn] = collections.deque()
        self._mutex = threading.Lock()
        self._pool = _Pool(limits.workers)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._refused_logged = 0.0
        self._housekept = time.monotonic()
        self._paused: list[_Conn] = []  # not read while buffered bytes exceed max_buffered
        self._accept_paused = False

    def __repr__(self) -> str:
        return f"<GuardedServer on {self.locationStr}; {len(self._conns)} connections>"

    @property
    def sockets(self) -> list[socket.socket]:
        return [self.sock] if self.sock is not None else []

    def connection_count(self) -> int:
        with self._mutex:
            return len(self._conns)

    # the selector thread

    def loop(self, loopCondition: Any = lambda: True) -> None:
        while self.sock is not None and not self.shutting_down and loopCondition():
            try:
                events = self._selector.select(_TICK)
            except (OSError, ValueError):
                if self.shutting_down:
                    break
                raise
            for key, _ in events:
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    self._drain_wake()
                else:
                    self._read(key.data)
            self._take_back()
            self._sweep()

    def _accept(self) -> None:
        assert self.sock is not None
        for _ in range(64):  # then let reads happen; the rest wait in the backlog
            try:
                csock, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # out of file descriptors, most likely: stop accepting for a second
                log.warning("accept failed on %s: %s; not accepting for 1 s", self.locationStr, err)
                self._selector.unregister(self.sock)
                self._accept_paused = True
                return
            peer = str(addr[0]) if isinstance(addr, tuple) else "local"
            with self._mutex:
                total, mine = len(self._conns), self._per_peer[peer]
            if total >= self._cap or mine >= self.limits.max_per_peer:
                self._refuse(csock, peer, total, mine)
                continue
            csock.setblocking(False)
            _keepalive(csock, self.limits.keepalive)
            if self.security is not None:  # handshake steps run on readable events: no thread, no stall
                csock = start_server_tls(csock, self.security)
            conn = _Conn(csock, peer, self.limits.send_timeout)
            conn.tls_pending = self.security is not None
            conn.partial_since = time.monotonic()  # the handshake is due within frame_timeout
            with self._mutex:
                self._conns[id(conn)] = conn
                self._per_peer[peer] += 1
            self._selector.register(csock, selectors.EVENT_READ, conn)

    def _refuse(self, csock: socket.socket, peer: str, total: int, mine: int) -> None:
        csock.close()
        now = time.monotonic()
        if now - self._refused_logged > 10:
            self._refused_logged = now
            which = (f"{peer} holds {mine} (max_per_peer {self.limits.max_per_peer})"
                     if mine >= self.limits.max_per_peer else f"{total} open (cap {self._cap})")
            log.warning("%s: refusing connections: %s", self.locationStr, which)

    def _read(self, conn: _Conn) -> None:
        if self._buffered > self.limits.max_buffered and len(conn.buffer) > _SMALL:
            # over the memory budget: big partial messages wait (and time out); small ones (a new
            # client's handshake, an ordinary call) and complete ones go on
            self._selector.unregister(conn.sock)
            self._paused.append(conn)
            return
        if conn.tls_pending and not self._tls_step(conn):
            return
        try:
            chunk = _recv(conn.sock)
        except OSError:
            chunk = b""
        if chunk is None:
            return
        if not chunk:
            self._drop(conn)
            return
        try:
            self._ingest(conn, chunk)
        except FrameError as err:
            self._selector.unregister(conn.sock)
            if self._consume_refused(conn, err):
                self._pool.submit(self._answer_refusal, conn, err)
            return
        if conn.frames:
            self._dispatch(conn)

    def _ingest(self, conn: _Conn, chunk: bytes) -> None:
        """Add received bytes (dropping what is left of a refused message) and split off complete messages."""
        if conn.skip:
            dropped = min(conn.skip, len(chunk))
            conn.skip -= dropped
            chunk = chunk[dropped:]
            if not chunk:
                if not conn.skip and not conn.buffer:
                    conn.partial_since = None
                return
        now = time.monotonic()
        conn.last_active = now
        if conn.partial_since is None:
            conn.partial_since = now
        conn.buffer += chunk
        with self._mutex:
            self._buffered += len(chunk)
        self._split(conn)

    def _tls_step(self, conn: _Conn) -> bool:
        """Advance a TLS handshake; True once done (then read on), False while waiting or after dropping it."""
        try:
            if not handshake_step(conn.sock):
                return False
        except OSError as err:  # ssl.SSLError too: no certificate, another CA, plain Pyro, garbage
            log.info("%s: refused %s at the TLS handshake: %s", self.locationStr, conn.peer, err)
            self._drop(conn)
            return False
        conn.tls_pending = False
        conn.partial_since = time.monotonic()  # now Pyro5's handshake is due within frame_timeout
        return True

    def _split(self, conn: _Conn) -> None:
        """Move the complete messages out of the buffer; check each header as soon as it is in."""
        completed = False
        while True:
            if conn.header is None:
                if len(conn.buffer) < HEADER_SIZE:
                    break
                expect = (protocol.MSG_INVOKE, protocol.MSG_PING) if conn.greeted or conn.frames else (
                    protocol.MSG_CONNECT,)
                conn.header = parse_header(bytes(conn.buffer[:HEADER_SIZE]), self.limits.max_message, expect)
            total = HEADER_SIZE + conn.header.body_size
            if len(conn.buffer) < total:
                break
            raw = bytes(conn.buffer[:total])
            del conn.buffer[:total]
            conn.frames.append((conn.header, raw))
            conn.header = None
            completed = True
        if completed or not conn.buffer:  # the next message's clock starts with its first byte
            conn.partial_since = time.monotonic() if conn.buffer else None

    def _dispatch(self, conn: _Conn) -> None:
        self._selector.unregister(conn.sock)
        self._pool.submit(self._work, conn)

    def _consume_refused(self, conn: _Conn, err: FrameError) -> bool:
        """A call refused from its header will be answered and its body dropped as it arrives (the
        connection stays usable): True. Anything else refused ends the connection: False."""
        log.info("%s: refused a message from %s: %s", self.locationStr, conn.peer, err)
        header = err.header
        if header is None or header.msg_type != protocol.MSG_INVOKE or not conn.greeted:
            self._close(conn)
            return False
        total = HEADER_SIZE + header.body_size
        with self._mutex:
            if len(conn.buffer) >= total:
                self._buffered -= total
                del conn.buffer[:total]
            else:
                self._buffered -= len(conn.buffer)
                conn.skip = total - len(conn.buffer)
                conn.buffer = bytearray()
        conn.header = None
        return True

    def _answer_refusal(self, conn: _Conn, err: FrameError) -> None:
        assert err.header is not None
        if err.header.flags & protocol.FLAGS_ONEWAY or self._refusal(conn, err.header, str(err)):
            self._give_back(conn)
        else:
            self._close(conn)

    def _give_back(self, conn: _Conn) -> None:
        """Hand a connection from a worker back to the selector thread."""
        self._returned.append(conn)
        self.wakeup()

    def _refusal(self, conn: _Conn, header: Header, message: str) -> bool:
        """Answer a refused call with ``InvalidArgument``; False when the peer cannot be told."""
        ser = header.serializer_id if header.serializer_id in serializers.serializers_by_id else \
            serializers.MarshalSerializer.serializer_id
        try:
            self.daemon._sendExceptionResponse(conn, header.seq, ser, InvalidArgument(message), None)
        except Exception as exc:  # noqa: BLE001 - the peer may be gone already
            log.debug("could not tell %s why: %s", conn.peer, exc)
            return False
        return True

    # the workers

    def _work(self, conn: _Conn) -> None:
        """Handle a connection's complete messages, and the next ones that follow at once (a client's
        next call usually comes within a millisecond: waiting briefly saves two thread hand-offs)."""
        keep = True
        try:
            while keep and not conn.closed:
                if not conn.frames:
                    if conn.skip or not self._linger(conn):
                        break
                    continue
                header, raw = conn.frames.popleft()
                with self._mutex:
                    self._buffered -= len(raw)
                keep = self._handle(conn, header, raw)
        except FrameError as err:
            if self._consume_refused(conn, err):
                self._answer_refusal(conn, err)
            return
        except Exception as err:  # noqa: BLE001 - one connection's failure never reaches the others
            log.debug("connection from %s ends: %s", conn.peer, err)
            keep = False
        if keep and not conn.closed:
            self._give_back(conn)
        else:
            self._close(conn)

    def _linger(self, conn: _Conn) -> bool:
        """Wait up to ``_LINGER`` for more of this connection's data; True if some arrived (and was taken in)."""
        if not _tls_pending(conn.sock):  # bytes TLS already decrypted do not show in poll
            if conn.poller is None:
                conn.poller = select.poll()
                conn.poller.register(conn.sock, select.POLLIN)
            if not conn.poller.poll(_LINGER * 1000) or self.shutting_down:
                return False
        chunk = _recv(conn.sock)
        if chunk is None:
            return False
        if not chunk:
            raise errors.ConnectionClosedError("closed by the peer")
        self._ingest(conn, chunk)
        return bool(conn.frames)

    def _handle(self, conn: _Conn, header: Header, raw: bytes) -> bool:
        try:
            check_body(header, memoryview(raw)[HEADER_SIZE:])
        except FrameError as err:
            log.info("%s: refused a message from %s: %s", self.locationStr, conn.peer, err)
            if header.msg_type != protocol.MSG_INVOKE or not conn.greeted:
                return False
            return bool(header.flags & protocol.FLAGS_ONEWAY) or self._refusal(conn, header, str(err))
        conn.hand(raw)
        if not conn.greeted:
            conn.greeted = bool(self.daemon._handshake(conn))
            return conn.greeted
        if header.flags & protocol.FLAGS_ONEWAY and not header.flags & protocol.FLAGS_BATCH:
            self._oneway(conn, header, raw)
            return True
        try:
            self.daemon.handleRequest(conn)
        except (OSError, errors.CommunicationError, errors.SecurityError) as err:
            log.debug("connection from %s ends: %s", conn.peer, err)
            return False
        return True

    def _oneway(self, conn: _Conn, header: Header, raw: bytes) -> None:
        """A one-way call, run here (Pyro5 would start a thread for each)."""
        try:
            msg = protocol.ReceivingMessage(raw[:HEADER_SIZE], raw[HEADER_SIZE:])
            serializer = serializers.serializers_by_id[msg.serializer_id]
            obj_id, method, vargs, kwargs = serializer.loadsCall(msg.data)
            current_context.client = conn
            current_context.client_sock_addr = None
            current_context.seq = msg.seq
            current_context.annotations = msg.annotations
            current_context.msg_flags = msg.flags
            current_context.serializer_id = msg.serializer_id
            obj = self.daemon.objectsById.get(obj_id)
            if obj is None:
                raise errors.DaemonError(f"unknown object {obj_id!r}")
            if method == "__setattr__":
                _set_exposed_property_value(obj, vargs[0], vargs[1])
            elif method != "__getattr__":
                _get_attribute(obj, method)(*vargs, **(kwargs or {}))
        except Exception as err:  # noqa: BLE001 - nobody waits for a one-way call's outcome
            log.info("one-way call from %s failed: %s: %s", conn.peer, type(err).__name__, str(err)[:200])

    # bookkeeping (selector thread, except _close)

    def _take_back(self) -> None:
        while self._returned:
            conn = self._returned.popleft()
            if conn.closed:
                continue
            conn.last_active = time.monotonic()
            if conn.frames:  # arrived while it was in the pool
                self._pool.submit(self._work, conn)
                continue
            try:
                self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            except (KeyError, ValueError, OSError):
                self._close(conn)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._housekept < 1.0:
            return
        self._housekept = now
        lim = self.limits
        if self._accept_paused and self.sock is not None:
            self._accept_paused = False
            self._selector.register(self.sock, selectors.EVENT_READ, "accept")
        paused, self._paused = self._paused, []
        if self._buffered <= lim.max_buffered:
            for conn in paused:
                if not conn.closed:
                    self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            paused = []
        self._paused = paused
        cut: collections.Counter[str] = collections.Counter()
        for conn in [key.data for key in self._selector.get_map().values()] + paused:
            if not isinstance(conn, _Conn):
                continue
            if conn.partial_since is not None:
                due = lim.frame_timeout + ((conn.header.body_size if conn.header else 0) + conn.skip) / lim.min_rate
                if now - conn.partial_since > due:
                    cut[conn.peer] += 1
                    self._drop(conn)
            elif now - conn.last_active > lim.idle_timeout and not self.daemon.keeps_connection(conn):
                log.debug("%s: closing %s, idle for %.0f s", self.locationStr, conn.peer, now - conn.last_active)
                self._drop(conn)
        if cut:
            log.info("%s: cut %d connection(s) whose message did not arrive in time (%s)", self.locationStr,
                     sum(cut.values()), ", ".join(f"{peer}: {n}" for peer, n in cut.most_common(5)))
        try:
            self.daemon._housekeeping()
        except Exception:
            log.exception("housekeeping failed")

    def _drop(self, conn: _Conn) -> None:
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        self._close(conn)

    def _close(self, conn: _Conn) -> None:
        with self._mutex:
            if self._conns.pop(id(conn), None) is None:
                return
            self._per_peer[conn.peer] -= 1
            if self._per_peer[conn.peer] <= 0:
                del self._per_peer[conn.peer]
        self._discard_buffers(conn)
        try:
            self.daemon._clientDisconnect(conn)
        except Exception:
            log.exception("client disconnect hook failed")
        conn.close()

    def _discard_buffers(self, conn: _Conn) -> None:
        with self._mutex:
            self._buffered -= len(conn.buffer) + sum(len(raw) for _, raw in conn.frames)
        conn.buffer = bytearray()
        conn.frames.clear()

    # Pyro5's transport-server interface

    def wakeup(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def shutdown(self) -> None:
        self.shutting_down = True
        self.wakeup()

    def close(self) -> None:
        self.shutting_down = True
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        with self._mutex:
            conns = list(self._conns.values())
        for conn in conns:
            self._close(conn)
        self._pool.shutdown()
        self._wake_r.close()
        self._wake_w.close()

    def combine_loop(self, server: Any) -> None:
        raise TypeError("the guarded server does not combine loops")

    def events(self, eventsockets: Any) -> None:
        raise TypeError("the guarded server runs its own loop (requestLoop)")
