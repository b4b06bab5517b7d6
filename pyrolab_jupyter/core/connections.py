"""Who is connected: client identity in the handshake, and a Pyro5 daemon that can close its connections.

The daemon serves through ``core.transport.GuardedServer`` (bounded threads,
connection caps, message limits) instead of Pyro5's thread server;
``TrackingDaemon.close_connections`` ends accepted connections on stop. Each
client process sends its identity once per connection, in Pyro5's handshake,
so the daemon knows who holds a lock without any per-call overhead. A plain
Pyro5 client cannot rebuild this library's error types, so it is sent them as
a ``Pyro5.errors.PyroError`` with the same message (``pyrolab_type`` names the original).
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import threading
import uuid
from typing import Any

from Pyro5.api import Daemon
from Pyro5.callcontext import current_context
from Pyro5.errors import PyroError

from pyrolab_jupyter.core import lane
from pyrolab_jupyter.core.errors import InvalidArgument, PyroLabError
from pyrolab_jupyter.core.limits import Limits
from pyrolab_jupyter.core.locks import ClientInfo
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.tls import peer_of
from pyrolab_jupyter.core.transport import GuardedServer

__all__ = ["TrackingDaemon", "client_handshake"]

log = logging.getLogger(__name__)

_HANDSHAKE_KEY = "pyrolab"
_process: tuple[int, ClientInfo] | None = None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _this_process() -> ClientInfo:
    global _process
    pid = os.getpid()
    if _process is None or _process[0] != pid:  # a forked child is another client
        identity = f"{_user()}@{socket.gethostname()} (pid {pid})"
        _process = (pid, ClientInfo(client_id=uuid.uuid4().hex, identity=identity))
    return _process[1]


def client_handshake() -> dict[str, Any]:
    """The handshake payload this process's proxies send: who it says it is (the daemon decides what to trust)."""
    me = _this_process()
    return {_HANDSHAKE_KEY: {"client_id": me.client_id, "identity": me.identity, "pid": os.getpid()}}


def _client_from(data: Any, conn: Any) -> ClientInfo:
    """Who the peer is: under TLS the certificate's CN (and role) plus the pid it states; else what it
    declares, marked ``unverified``."""
    info = data.get(_HANDSHAKE_KEY) if isinstance(data, dict) else None
    peer = peer_of(getattr(conn, "sock", None))
    if isinstance(info, dict) and isinstance(info.get("client_id"), str):
        client_id = info["client_id"][:64]
        pid = info.get("pid")
        pid_text = f"pid {pid}" if isinstance(pid, int) and not isinstance(pid, bool) else "pid ?"
        if peer is not None:
            return ClientInfo(client_id, f"{peer.name} ({pid_text})", role=peer.role, verified=True)
        declared = str(info.get("identity") or client_id)[:200]
        if declared.endswith(")"):  # "alice@pc (pid 42)" -> "alice@pc (pid 42, unverified)"
            return ClientInfo(client_id, declared[:-1] + ", unverified)")
        return ClientInfo(client_id, f"{declared} (unverified)")
    try:
        address = "%s:%s" % conn.sock.getpeername()[:2]
    except (OSError, AttributeError):
        address = "unknown address"
    if peer is not None:
        return ClientInfo(f"anonymous-{id(conn)}", f"{peer.name} (Pyro5 client at {address})", role=peer.role,
                          verified=True)
    return ClientInfo(f"anonymous-{id(conn)}", f"plain Pyro5 client at {address} (unverified)")


_MAX_MESSAGE_TEXT = 500


def _brief(text: str) -> str:
    if len(text) <= _MAX_MESSAGE_TEXT:
        return text
    half = _MAX_MESSAGE_TEXT // 2
    return f"{text[:half]} …[{len(text) - 2 * half} characters cut]… {text[-half:]}"


def _user_facing(err: BaseException) -> BaseException:
    """What a caller is sent: errors the request itself caused (unknown member, malformed call) become
    ``InvalidArgument``; a service's own errors keep their type; long messages are cut."""
    if not isinstance(err, (PyroError, PyroLabError)) and not getattr(err, "_pyrolab_raised_by_service", False):
        return InvalidArgument(_brief(f"the call was refused: {type(err).__name__}: {err}"))
    text = str(err)
    if len(text) <= _MAX_MESSAGE_TEXT:
        return err
    try:
        short = type(err)(_brief(text))
    except Exception:  # noqa: BLE001 - a type that wants other arguments keeps its long message
        return err
    short.__dict__.update(err.__dict__)
    return short


class TrackingDaemon(Daemon):  # type: ignore[misc]
    """A Pyro5 daemon that knows each connection's client and can close them all."""

    def __init__(self, host: str, port: int, limits: Limits | None = None,
                 nathost: str | None = None, natport: int | None = None, security: Security | None = None) -> None:
        super().__init__(host=host, port=port, nathost=nathost, natport=natport)
        self.limits = limits or Limits()
        self.security = security
        # Pyro5 bound the socket; we serve it (the thread pool it made never gets work)
        threaded: Any = getattr(self, "transportServer")  # noqa: B009
        listener, threaded.sock = threaded.sock, None
        threaded.housekeeper.stop.set()
        for worker in threaded.pool.idle:
            worker.process(None)
        threaded.pool.closed = True
        threaded.housekeeper = None
        self.transportServer = GuardedServer(self, listener, self.locationStr, self.limits, security)
        self._conns: dict[Any, ClientInfo] = {}
        self._conns_mutex = threading.Lock()

    def _handshake(self, conn: Any, denied_reason: str | None = None) -> bool:
        # tracked from the first byte, so stop() also ends peers that never finish the handshake
        self._know(conn, _client_from(None, conn))
        ok: bool = super()._handshake(conn, denied_reason)
        return ok

    def validateHandshake(self, conn: Any, data: Any) -> Any:
        self._know(conn, _client_from(data, conn))
        return lane.HELLO

    def _know(self, conn: Any, client: ClientInfo) -> None:
        with self._conns_mutex:
            self._conns[conn] = client
        try:
            conn.pyrolab_client = client  # read on every call (current_client) without the mutex
        except AttributeError:  # a connection class without a __dict__
            pass

    def clientDisconnect(self, conn: Any) -> None:
        with self._conns_mutex:
            client = self._conns.pop(conn, None)
            still_here = client is not None and any(c.client_id == client.client_id for c in self._conns.values())
        if client is not None and not still_here:
            self.client_gone(client)

    def client_gone(self, client: ClientInfo) -> None:
        """Called when a client process's last connection closed; override to react."""

    def keeps_connection(self, conn: Any) -> bool:
        """Whether an idle connection must stay open: a session instance lives on it (overridden for locks)."""
        return bool(getattr(conn, "pyroInstances", None))

    def is_ours(self, conn: Any) -> bool:
        """Whether the peer is this library's client (it can rebuild our error types)."""
        with self._conns_mutex:
            client = self._conns.get(conn)
        return client is not None and not client.client_id.startswith("anonymous-")

    def _sendExceptionResponse(self, connection: Any, seq: int, serializer_id: int, exc_value: BaseException,
                               tbinfo: Any, flags: int = 0, annotations: Any = None) -> None:
        exc_value = _user_facing(exc_value)
        if isinstance(exc_value, PyroLabError) and not self.is_ours(connection):
            plain = PyroError(str(exc_value))
            plain.pyrolab_type = type(exc_value).__name__
            exc_value = plain
        super()._sendExceptionResponse(connection, seq, serializer_id, exc_value, tbinfo, flags, annotations)

    def current_client(self) -> ClientInfo:
        """The client behind the call being served on this thread."""
        conn = current_context.client
        client = getattr(conn, "pyrolab_client", None)
        if client is None:
            with self._conns_mutex:
                client = self._conns.get(conn)
        if client is None:
            client = ClientInfo(client_id=f"anonymous-{id(conn)}", identity="unknown client")
        return client

    def connection_count(self) -> int:
        with self._conns_mutex:
            return len(self._conns)

    @property
    def server(self) -> GuardedServer:
        server: GuardedServer = self.transportServer
        return server

    def close_connections(self) -> None:
        """End every accepted connection (their worker threads then exit)."""
        with self._conns_mutex:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
