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
import selectors
import socket
import threading
import time
from typing import Any

from Pyro5 import errors, protocol, serializers
from Pyro5.server import _get_attribute, _set_exposed_property_value

from pyrolab_jupyter.core import bulk, lane
from pyrolab_jupyter.core.errors import InvalidArgument
from pyrolab_jupyter.core.frames import HEADER_SIZE, FrameError, Header, check_body, parse_header
from pyrolab_jupyter.core.limits import Limits
from pyrolab_jupyter.core.peers import Peer, keepalive
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.tls import handshake_step, peer_of, start_server_tls
from pyrolab_jupyter.core.workers import WorkerPool

__all__ = ["GuardedServer"]

log = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024
_TICK = 0.25
_SMALL = 64 * 1024  # a partial message this small is read on even when the memory budget is spent
_COPY_MAX = 64 * 1024  # a message this small is sliced (bytes index fastest), a larger one viewed (no copy)
_CALLS = (protocol.MSG_INVOKE, protocol.MSG_PING)  # what a greeted connection may send
_LINGER = 0.002  # seconds a worker waits for a connection's next message before handing it back


def _owner(conn: Peer) -> str:
    """Whom an out-of-band array (``core.bulk``) belongs to: the peer's address, under TLS its verified
    certificate (CN and role, set once its handshake is done), so only the caller that made a ticket can
    claim it: another certificate on the same PC cannot."""
    return conn.owner


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
        self._conns: dict[int, Peer] = {}
        self._per_peer: collections.Counter[str] = collections.Counter()
        self._buffered = 0
        self._returned: collections.deque[Peer] = collections.deque()
        self._mutex = threading.Lock()
        self._pool = WorkerPool(limits.workers)
        self._stash = bulk.Stash(limits.max_bulk)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._refused_logged = 0.0
        self._housekept = time.monotonic()
        self._paused: list[Peer] = []  # not read while buffered bytes exceed max_buffered
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
            keepalive(csock, self.limits.keepalive)
            if isinstance(addr, tuple):  # a reply in two sends (header, then a large body) is not held back
                csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.security is not None:  # handshake steps run on readable events: no thread, no stall
                csock = start_server_tls(csock, self.security)
            conn = Peer(csock, peer, self.limits.send_timeout, addr)
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

    def _read(self, conn: Peer) -> None:
        if self._buffered > self.limits.max_buffered and len(conn.buffer) > _SMALL:
            # over the memory budget: big partial messages wait (and time out); small ones (a new
            # client's handshake, an ordinary call) and complete ones go on
            self._selector.unregister(conn.sock)
            self._paused.append(conn)
            return
        if conn.tls_pending and not self._tls_step(conn):
            return
        try:
            chunk = conn.receive(_READ_CHUNK)
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
        if conn.frames or (conn.bulk and len(conn.buffer) >= bulk.REQUEST_SIZE):
            self._dispatch(conn)

    def _ingest(self, conn: Peer, chunk: bytes) -> None:
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
        if not conn.buffer and conn.greeted and conn.header is None and len(chunk) >= HEADER_SIZE:
            # the usual case: exactly one whole call arrived; it is kept as it came, no copying
            try:
                header = parse_header(chunk[:HEADER_SIZE], self.limits.max_message, _CALLS)
            except FrameError:
                header = None  # refused below, as any message is
            if header is not None and HEADER_SIZE + header.body_size == len(chunk):
                with self._mutex:
                    self._buffered += len(chunk)
                conn.frames.append((header, chunk))
                conn.partial_since = None
                return
        if conn.partial_since is None:
            conn.partial_since = now
        conn.buffer += chunk
        with self._mutex:
            self._buffered += len(chunk)
        self._split(conn)

    def _tls_step(self, conn: Peer) -> bool:
        """Advance a TLS handshake; True once done (then read on), False while waiting or after dropping it."""
        try:
            if not handshake_step(conn.sock):
                return False
        except OSError as err:  # ssl.SSLError too: no certificate, another CA, plain Pyro, garbage
            log.info("%s: refused %s at the TLS handshake: %s", self.locationStr, conn.peer, err)
            self._drop(conn)
            return False
        conn.tls_pending = False
        verified = peer_of(conn.sock)
        conn.owner = f"tls:{verified}" if verified is not None else f"tls:no CN@{conn.peer}"
        conn.partial_since = time.monotonic()  # now Pyro5's handshake is due within frame_timeout
        return True

    def _split(self, conn: Peer) -> None:
        """Move the complete messages out of the buffer; check each header as soon as it is in."""
        completed = False
        if not conn.greeted and not conn.frames and conn.buffer[:len(bulk.MAGIC)] == bulk.MAGIC:
            conn.bulk = True  # core.bulk's connection: the worker reads its requests (_bulk_turn)
        while not conn.bulk:
            if conn.header is None:
                if len(conn.buffer) < HEADER_SIZE:
                    break
                expect = _CALLS if conn.greeted or conn.frames else (protocol.MSG_CONNECT,)
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

    def _dispatch(self, conn: Peer) -> None:
        self._selector.unregister(conn.sock)
        self._pool.submit(self._work, conn)

    def _consume_refused(self, conn: Peer, err: FrameError) -> bool:
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

    def _answer_refusal(self, conn: Peer, err: FrameError) -> None:
        assert err.header is not None
        if err.header.flags & protocol.FLAGS_ONEWAY or self._refusal(conn, err.header, str(err)):
            self._give_back(conn)
        else:
            self._close(conn)

    def _give_back(self, conn: Peer) -> None:
        """Hand a connection from a worker back to the selector thread."""
        self._returned.append(conn)
        self.wakeup()

    def _refusal(self, conn: Peer, header: Header, message: str) -> bool:
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

    def _work(self, conn: Peer) -> None:
        """Handle a connection's complete messages, and the next ones that follow at once (a client's
        next call usually comes within a millisecond: waiting briefly saves two thread hand-offs)."""
        keep = True
        bulk.serving(self._stash, _owner(conn))
        if conn.bulk:
            self._bulk_turn(conn)
            return
        refused: FrameError | None = None
        lent = conn.lend(_LINGER)
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
            refused = err
        except Exception as err:  # noqa: BLE001 - one connection's failure never reaches the others
            log.debug("connection from %s ends: %s", conn.peer, err)
            keep = False
        if lent:
            conn.unlend()
        if refused is not None:
            if self._consume_refused(conn, refused):
                self._answer_refusal(conn, refused)
            return
        if keep and not conn.closed:
            self._give_back(conn)
        else:
            self._close(conn)

    def _bulk_turn(self, conn: Peer) -> None:
        """Requests of a bulk connection (``core.bulk``): the worker moves the array's bytes itself, and
        takes the next request that follows within ``_LINGER`` (a scan's next fetch) without a hand-off."""
        with self._mutex:
            self._buffered -= len(conn.buffer)
        request: bytes | None = bytes(conn.buffer[:bulk.REQUEST_SIZE])
        keep = len(conn.buffer) == bulk.REQUEST_SIZE
        conn.buffer = bytearray()
        conn.partial_since = None
        timeout = self.limits.frame_timeout
        try:
            while keep and request is not None:
                keep = bulk.serve_turn(conn.sock, request, self._stash, _owner(conn), timeout, self.limits.min_rate)
                conn.last_active = time.monotonic()
                if not keep or self.shutting_down or not conn.readable(_LINGER):
                    break
                request = bulk.read_request(conn.sock, timeout)
                keep = request is not None
        except (OSError, bulk.BulkError) as err:
            log.info("%s: bulk transfer with %s ends: %s", self.locationStr, conn.peer, err)
            keep = False
        except Exception:  # noqa: BLE001 - one connection's failure never reaches the others
            log.exception("%s: bulk transfer with %s failed", self.locationStr, conn.peer)
            keep = False
        if keep and not conn.closed:
            conn.sock.setblocking(False)
            self._give_back(conn)
        else:
            self._close(conn)

    def _linger(self, conn: Peer) -> bool:
        """Wait up to ``_LINGER`` for more of this connection's data; True if some arrived (and was taken in)."""
        if self.shutting_down or not conn.lent and not conn.readable(_LINGER):
            return False
        chunk = conn.receive(_READ_CHUNK)  # a lent connection waits here, up to _LINGER, in the kernel
        if chunk is None:
            return False
        if not chunk:
            raise errors.ConnectionClosedError("closed by the peer")
        self._ingest(conn, chunk)
        return bool(conn.frames)

    def _handle(self, conn: Peer, header: Header, raw: bytes) -> bool:
        try:
            notes = check_body(header, raw[HEADER_SIZE:] if len(raw) <= _COPY_MAX else memoryview(raw)[HEADER_SIZE:])
        except FrameError as err:
            log.info("%s: refused a message from %s: %s", self.locationStr, conn.peer, err)
            if header.msg_type != protocol.MSG_INVOKE or not conn.greeted:
                return False
            return bool(header.flags & protocol.FLAGS_ONEWAY) or self._refusal(conn, header, str(err))
        if not conn.greeted:
            conn.hand(raw)
            conn.greeted = bool(self.daemon._handshake(conn))
            return conn.greeted
        if header.flags & protocol.FLAGS_ONEWAY and not header.flags & protocol.FLAGS_BATCH:
            self._oneway(conn, header, raw)
            return True
        try:
            if lane.serve(self.daemon, conn, header, raw, notes):
                return True
            conn.hand(raw)
            self.daemon.handleRequest(conn)
        except (OSError, errors.CommunicationError, errors.SecurityError) as err:
            log.debug("connection from %s ends: %s", conn.peer, err)
            return False
        return True

    def _oneway(self, conn: Peer, header: Header, raw: bytes) -> None:
        """A one-way call, run here (Pyro5 would start a thread for each)."""
        try:
            msg = protocol.ReceivingMessage(raw[:HEADER_SIZE], raw[HEADER_SIZE:])
            serializer = serializers.serializers_by_id[msg.serializer_id]
            obj_id, method, vargs, kwargs = serializer.loadsCall(msg.data)
            lane.enter(conn, msg.seq, msg.flags, msg.serializer_id, msg.annotations)
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
            if not isinstance(conn, Peer):
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
        self._stash.expire()
        try:
            self.daemon._housekeeping()
        except Exception:
            log.exception("housekeeping failed")

    def _drop(self, conn: Peer) -> None:
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        self._close(conn)

    def _close(self, conn: Peer) -> None:
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

    def _discard_buffers(self, conn: Peer) -> None:
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
