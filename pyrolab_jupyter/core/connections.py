"""Who is connected: client identity in the handshake, and a Pyro5 daemon that can close its connections.

Pyro5's thread server keeps serving connections it already accepted after
``shutdown()``; ``TrackingDaemon.close_connections`` ends them. Each client
process sends its identity once per connection, in Pyro5's handshake, so the
daemon knows who holds a lock without any per-call overhead.
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

from pyrolab_jupyter.core.locks import ClientInfo

__all__ = ["TrackingDaemon", "client_handshake", "keep_alive"]

log = logging.getLogger(__name__)

_HANDSHAKE_KEY = "pyrolab"
# a peer that went silent (cable pulled, Wi-Fi gone: no FIN, no RST) is given up after about 30 s
_KEEPALIVE_IDLE, _KEEPALIVE_INTERVAL, _KEEPALIVE_COUNT = 10, 5, 3
_USER_TIMEOUT_MS = 30_000  # unacknowledged data (a reply into a cut link) is given up as well
_process: tuple[int, ClientInfo] | None = None


def _this_process() -> ClientInfo:
    global _process
    pid = os.getpid()
    if _process is None or _process[0] != pid:  # a forked child is another client
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        identity = f"{user}@{socket.gethostname()} (pid {pid})"
        _process = (pid, ClientInfo(client_id=uuid.uuid4().hex, identity=identity))
    return _process[1]


def client_handshake() -> dict[str, Any]:
    """The handshake payload this process's proxies send."""
    me = _this_process()
    return {_HANDSHAKE_KEY: {"client_id": me.client_id, "identity": me.identity}}


def keep_alive(sock: socket.socket) -> None:
    """Reap this connection when its peer goes silent (TCP keepalive and user timeout, this socket only).

    Set per socket, never through Pyro5's process-wide config; options the
    platform lacks are skipped.
    """
    options = [(socket.SOL_SOCKET, "SO_KEEPALIVE", 1), (socket.IPPROTO_TCP, "TCP_KEEPIDLE", _KEEPALIVE_IDLE),
               (socket.IPPROTO_TCP, "TCP_KEEPINTVL", _KEEPALIVE_INTERVAL),
               (socket.IPPROTO_TCP, "TCP_KEEPCNT", _KEEPALIVE_COUNT),
               (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", _USER_TIMEOUT_MS)]
    for level, name, value in options:
        option = getattr(socket, name, None)
        if option is None:
            continue
        try:
            sock.setsockopt(level, option, value)
        except OSError:  # a Unix socket, or a platform that refuses the value
            return


def _client_from(data: Any, conn: Any) -> ClientInfo:
    info = data.get(_HANDSHAKE_KEY) if isinstance(data, dict) else None
    if isinstance(info, dict) and isinstance(info.get("client_id"), str):
        identity = str(info.get("identity") or info["client_id"])[:200]
        return ClientInfo(client_id=info["client_id"][:64], identity=identity)
    try:
        peer = "%s:%s" % conn.sock.getpeername()[:2]
    except OSError:
        peer = "unknown address"
    return ClientInfo(client_id=f"anonymous-{id(conn)}", identity=f"plain Pyro5 client at {peer}")


class TrackingDaemon(Daemon):  # type: ignore[misc]
    """A Pyro5 daemon that knows each connection's client and can close them all."""

    def __init__(self, host: str, port: int, nathost: str | None = None, natport: int | None = None) -> None:
        super().__init__(host=host, port=port, nathost=nathost, natport=natport)
        self._conns: dict[Any, ClientInfo] = {}
        self._conns_mutex = threading.Lock()

    def _handshake(self, conn: Any, denied_reason: str | None = None) -> bool:
        # tracked from the first byte, so stop() also ends peers that never finish the handshake
        keep_alive(conn.sock)
        with self._conns_mutex:
            self._conns[conn] = _client_from(None, conn)
        ok: bool = super()._handshake(conn, denied_reason)
        return ok

    def validateHandshake(self, conn: Any, data: Any) -> Any:  # noqa: N802 (Pyro5's name)
        client = _client_from(data, conn)
        with self._conns_mutex:
            self._conns[conn] = client
        return "hello"

    def clientDisconnect(self, conn: Any) -> None:  # noqa: N802 (Pyro5's name)
        with self._conns_mutex:
            client = self._conns.pop(conn, None)
            still_here = client is not None and any(c.client_id == client.client_id for c in self._conns.values())
        if client is not None and not still_here:
            self.client_gone(client)

    def client_gone(self, client: ClientInfo) -> None:
        """Called when a client process's last connection closed; override to react."""

    def current_client(self) -> ClientInfo:
        """The client behind the call being served on this thread."""
        conn = current_context.client
        with self._conns_mutex:
            client = self._conns.get(conn)
        if client is None:
            client = ClientInfo(client_id=f"anonymous-{id(conn)}", identity="unknown client")
        return client

    def connection_count(self) -> int:
        with self._conns_mutex:
            return len(self._conns)

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
