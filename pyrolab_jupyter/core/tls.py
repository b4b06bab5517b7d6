"""TLS per connection for Pyro5, without its process-wide ``config.SSL``.

Client side: ``TlsProxy`` is a Pyro5 proxy that opens its own socket, wraps
it with its ``Security``'s client context, checks that the server's
certificate carries the ``daemon`` role and then does Pyro5's connect
handshake on it; ``connect_tls_pipe`` is the same connection for bulk data
(``core.bulk``), with TLS driven through memory buffers. Server side:
``accept_tls`` wraps an accepted socket with the server context; servers
call it on a worker thread (never in the accept loop), with a deadline, so a
silent TCP peer holds up nobody but itself.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from typing import Any, cast

from Pyro5 import config, core, errors, protocol, serializers, socketutil
from Pyro5.api import Daemon, Proxy
from Pyro5.callcontext import current_context

from pyrolab_jupyter.core.security import Peer, Security, peer_from_cert

__all__ = [
    "TlsPipe", "TlsProxy", "TlsThreadDaemon", "accept_tls", "connect_tls", "connect_tls_pipe", "handshake_step",
    "peer_of", "start_server_tls",
]

log = logging.getLogger(__name__)


def peer_of(sock: Any) -> Peer | None:
    """The verified peer of a TLS socket; None for a plain socket."""
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    try:
        return peer_from_cert(getpeercert())
    except (ValueError, OSError):
        return None


def accept_tls(sock: socket.socket, security: Security) -> ssl.SSLSocket:
    """Run the server side of the TLS handshake on an accepted socket, within ``security.handshake_timeout``.

    Raises ``ssl.SSLError`` or ``OSError``, with the socket closed, when the peer
    sends no certificate, one from another CA, plain Pyro, or nothing in time.
    """
    previous = sock.gettimeout()
    sock.settimeout(security.handshake_timeout)
    tls = security.server_context().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    try:
        tls.do_handshake()
    except BaseException:
        tls.close()
        raise
    tls.settimeout(previous)
    return tls


def start_server_tls(sock: socket.socket, security: Security) -> ssl.SSLSocket:
    """Wrap a non-blocking accepted socket for a handshake driven by ``handshake_step`` (a selector's server)."""
    return security.server_context().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)


def handshake_step(tls: ssl.SSLSocket) -> bool:
    """Advance a non-blocking server handshake: True once done, False while the peer owes bytes.

    Raises ``ssl.SSLError``/``OSError`` when it fails (no certificate, another CA, not TLS at all).
    """
    try:
        tls.do_handshake()
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return False
    return True


def connect_tls(host: str, port: int, security: Security, timeout: float | None,
                daemon_only: bool = True) -> ssl.SSLSocket:
    """A mutual-TLS connection with ``security``'s client context to a server presenting a lab
    certificate (with the ``daemon`` role unless ``daemon_only=False``); ``errors.CommunicationError``
    when it does not."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        socketutil.set_nodelay(sock)
        tls = security.client_context().wrap_socket(sock, server_side=False)
    except BaseException:
        sock.close()
        raise
    _check_daemon(tls, host, port, daemon_only)
    return tls


def _check_daemon(tls: ssl.SSLSocket | TlsPipe, host: str, port: int, daemon_only: bool) -> None:
    peer = peer_of(tls)
    if peer is None or (daemon_only and not peer.may_register):
        tls.close()
        raise errors.CommunicationError(
            f"{host}:{port} presented {peer or 'no usable certificate'}, not a lab daemon's certificate "
            "(OU=daemon); refusing to talk to it")


def connect_tls_pipe(host: str, port: int, security: Security, timeout: float) -> TlsPipe:
    """``connect_tls`` for bulk data: the same mutual TLS and daemon check, as a ``TlsPipe``.

    The handshake must finish within ``timeout`` as a whole (a peer trickling it
    byte by byte is cut); ``socket.timeout``/``ssl.SSLError``/``OSError`` when it
    does not, ``errors.CommunicationError`` when the server is not a lab daemon.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        socketutil.set_nodelay(sock)
        pipe = TlsPipe(sock, security.client_context(), time.monotonic() + timeout)
    except BaseException:
        sock.close()
        raise
    _check_daemon(pipe, host, port, True)
    return pipe


class TlsPipe:
    """A client's TLS connection for bulk data, the records made and read in memory (``ssl.MemoryBIO``).

    An ``ssl.SSLSocket`` writes every 16 KiB TLS record with a system call of
    its own, and reads each in two; here OpenSSL encrypts into memory and the
    records leave in one ``sendall`` per ``_OUT`` bytes, and arrive by
    ``_IN``-byte reads, which costs the sending client about a quarter less CPU
    per byte (``benchmarks/bench_tls.py`` prints it). Same context, same certificate
    checks, same cipher: only who makes the system calls changes. The plain
    socket's timeout bounds each wait. Socket-like as far as ``core.bulk`` needs.
    """

    _OUT = 1 << 20  # plaintext bytes encrypted per sendall
    _IN = 256 * 1024  # bytes read from the socket at once

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, deadline: float) -> None:
        self.sock = sock
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=False)
        self._buffer = bytearray(self._IN)
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if time.monotonic() > deadline:
                    raise socket.timeout("TLS handshake took too long") from None
                if not self._fill():
                    raise ConnectionError("closed during the TLS handshake") from None
        self._flush()

    def _fill(self) -> bool:
        """Hand the next bytes from the socket to TLS; False at end of stream."""
        n = self.sock.recv_into(self._buffer)
        if n:
            self._incoming.write(memoryview(self._buffer)[:n])
        return n > 0

    def _flush(self) -> None:
        if self._outgoing.pending:
            self.sock.sendall(self._outgoing.read())

    def sendall(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), self._OUT):
            self._tls.write(view[start:start + self._OUT])
            self._flush()

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        """Up to ``nbytes`` (all of ``buffer`` if 0) of plaintext into ``buffer``; 0 at end of stream."""
        nbytes = nbytes or len(buffer)
        while True:
            try:
                n = cast(int, self._tls.read(nbytes, buffer))  # with a buffer: the count
                break
            except ssl.SSLWantReadError:
                self._flush()  # a post-handshake message the peer expects an answer to
                if not self._fill():
                    return 0
            except ssl.SSLZeroReturnError:  # the peer closed the TLS session
                return 0
        self._flush()
        return n

    def getpeercert(self) -> dict[str, Any] | None:
        cert: dict[str, Any] | None = self._tls.getpeercert()
        return cert

    def cipher(self) -> tuple[str, str, int] | None:
        return self._tls.cipher()

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


class TlsProxy(Proxy):  # type: ignore[misc]
    """A Pyro5 proxy whose connections are mutual TLS with its own ``Security``.

    Only direct ``PYRO:`` URIs over TCP are supported (ours always are). The
    server must present a ``daemon`` certificate, unless ``daemon_only=False``
    (a daemon calling back a client's subscription receiver).
    """

    def __init__(self, uri: Any, security: Security, daemon_only: bool = True) -> None:
        object.__setattr__(self, "_pyrolab_security", security)  # Proxy.__setattr__ forwards to the remote
        object.__setattr__(self, "_pyrolab_daemon_only", daemon_only)
        super().__init__(uri)

    def __copy__(self) -> TlsProxy:
        copy: TlsProxy = super().__copy__()
        object.__setattr__(copy, "_pyrolab_security", self._pyrolab_security)
        object.__setattr__(copy, "_pyrolab_daemon_only", self._pyrolab_daemon_only)
        return copy

    def _Proxy__pyroCreateConnection(self, replaceUri: bool = False, connected_socket: Any = None) -> bool:  # noqa: N802
        connection: Any = getattr(self, "_pyroConnection", None)
        if connected_socket is not None or connection is not None:
            result: bool = super()._Proxy__pyroCreateConnection(replaceUri, connected_socket)
            return result
        self._Proxy__check_owner()
        uri = core.resolve(self._pyroUri)
        if uri.sockname or not uri.host:
            raise errors.CommunicationError(f"{uri}: TLS needs a TCP address (host:port)")
        where = f"{uri.host}:{uri.port}"
        try:
            sock = connect_tls(uri.host, uri.port, self._pyrolab_security, self._pyroTimeout,
                               self._pyrolab_daemon_only)
        except errors.CommunicationError:
            raise
        except socket.timeout as err:
            raise errors.TimeoutError(f"cannot connect to {where}: TLS handshake timed out") from err
        except (ssl.SSLError, OSError) as err:
            raise errors.CommunicationError(f"cannot connect to {where} over TLS: {err}") from err
        conn = socketutil.SocketConnection(sock, uri.object)
        try:
            response = self._pyrolab_connect(conn, uri)
        except BaseException:
            conn.close()
            raise
        self._pyroConnection = conn
        self._pyroLocalSocket = sock.getsockname()
        self._pyroValidateHandshake(response)
        return True

    def _pyrolab_connect(self, conn: Any, uri: Any) -> Any:
        """Pyro5's connect handshake (MSG_CONNECT), on our socket; returns the daemon's handshake answer."""
        serializer = serializers.serializers[self._pyroSerializer or config.SERIALIZER]
        data = serializer.dumps({"handshake": self._pyroHandshake, "object": uri.object})
        msg = protocol.SendingMessage(protocol.MSG_CONNECT, 0, self._pyroSeq, serializer.serializer_id, data,
                                      annotations=current_context.annotations)
        try:
            conn.send(msg.data)
            reply = protocol.recv_stub(conn, [protocol.MSG_CONNECTOK, protocol.MSG_CONNECTFAIL])
        except errors.TimeoutError:
            raise
        except (OSError, errors.ProtocolError) as err:
            raise errors.CommunicationError(f"cannot connect to {uri.location}: {err}") from err
        answer: Any = serializers.serializers_by_id[reply.serializer_id].loads(reply.data) if reply.data else "?"
        if reply.type == protocol.MSG_CONNECTFAIL:
            raise errors.CommunicationError(f"connection to {uri.location} rejected: {answer}")
        self._Proxy__processMetadata(answer["meta"])
        if reply.annotations:
            current_context.response_annotations = reply.annotations
        return answer["handshake"]


class TlsThreadDaemon(Daemon):  # type: ignore[misc]
    """A plain Pyro5 daemon (thread server) that only speaks mutual TLS: the client's callback receiver.

    The TLS handshake runs in the connection's worker thread, before Pyro5's
    own, with ``security.handshake_timeout``: never in the accept loop.
    """

    def __init__(self, host: str, port: int, security: Security) -> None:
        super().__init__(host=host, port=port)
        self._pyrolab_security = security

    def _handshake(self, conn: Any, denied_reason: str | None = None) -> bool:
        try:
            conn.sock = accept_tls(conn.sock, self._pyrolab_security)
        except (ssl.SSLError, OSError) as err:
            log.info("refused a connection to %s: TLS handshake failed: %s", self.locationStr, err)
            return False
        ok: bool = super()._handshake(conn, denied_reason)
        return ok
