"""TLS per connection for Pyro5, without its process-wide ``config.SSL``.

Client side: ``TlsProxy`` is a Pyro5 proxy that opens its own socket, wraps
it with its ``Security``'s client context, checks that the server's
certificate carries the ``daemon`` role and then does Pyro5's connect
handshake on it. Server side: ``accept_tls`` wraps an accepted socket with
the server context; servers call it on a worker thread (never in the accept
loop), with a deadline, so a silent TCP peer holds up nobody but itself.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

from Pyro5 import config, core, errors, protocol, serializers, socketutil
from Pyro5.api import Daemon, Proxy
from Pyro5.callcontext import current_context

from pyrolab_jupyter.core.security import Peer, Security, peer_from_cert

__all__ = [
    "TlsProxy", "TlsThreadDaemon", "accept_tls", "connect_tls", "handshake_step", "peer_of",
    "start_server_tls",
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
    peer = peer_of(tls)
    if peer is None or (daemon_only and not peer.may_register):
        tls.close()
        raise errors.CommunicationError(
            f"{host}:{port} presented {peer or 'no usable certificate'}, not a lab daemon's certificate "
            "(OU=daemon); refusing to talk to it")
    return tls


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
