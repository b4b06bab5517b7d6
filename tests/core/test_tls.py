"""TlsProxy and accept_tls against a tiny TLS Pyro5 server started here, on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from Pyro5.api import Proxy, expose
from Pyro5.errors import CommunicationError, PyroError

from pyrolab_jupyter.core.tls import TlsProxy, TlsThreadDaemon, peer_of

pytestmark = pytest.mark.network


@expose
class Echo:
    def echo(self, value: Any) -> Any:
        return value


class TinyTlsServer(TlsThreadDaemon):
    """The callback receiver's TLS daemon, recording who got through the handshake."""

    def __init__(self, security: Any) -> None:
        super().__init__("127.0.0.1", 0, security)
        self.peers: list[Any] = []

    def validateHandshake(self, conn: Any, data: Any) -> Any:  # noqa: N802
        self.peers.append(peer_of(conn.sock))
        return super().validateHandshake(conn, data)


@pytest.fixture
def tls_server(lab_ca: Any) -> Iterator[TinyTlsServer]:
    server = TinyTlsServer(lab_ca.security("tiny-daemon", "daemon"))
    server.uri = server.register(Echo, "echo")
    thread = threading.Thread(target=server.requestLoop, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)


def test_call_over_mutual_tls_names_both_ends(tls_server: TinyTlsServer, lab_ca: Any) -> None:
    with TlsProxy(tls_server.uri, lab_ca.security("alice", "user")) as proxy:
        proxy._pyroTimeout = 10
        proxy._pyroSerializer = "marshal"
        assert proxy.echo(b"\x00\x01") == b"\x00\x01"
        assert proxy.echo([1, "two"]) == [1, "two"]
        assert isinstance(proxy._pyroConnection.sock, ssl.SSLSocket)
        assert peer_of(proxy._pyroConnection.sock).name == "tiny-daemon"
    assert [(p.name, p.role) for p in tls_server.peers] == [("alice", "user")]


def test_reconnects_after_release(tls_server: TinyTlsServer, lab_ca: Any) -> None:
    with TlsProxy(tls_server.uri, lab_ca.security("alice", "user")) as proxy:
        proxy._pyroTimeout = 10
        assert proxy.echo(1) == 1
        proxy._pyroRelease()
        assert proxy.echo(2) == 2
    assert len(tls_server.peers) == 2


def test_plain_pyro_client_is_refused(tls_server: TinyTlsServer) -> None:
    with Proxy(tls_server.uri) as proxy:
        proxy._pyroTimeout = 5
        with pytest.raises(PyroError):
            proxy.echo(1)
    assert tls_server.peers == []


def test_foreign_ca_client_is_refused(tls_server: TinyTlsServer, foreign_ca: Any) -> None:
    with TlsProxy(tls_server.uri, foreign_ca.security("mallory", "admin")) as proxy:
        proxy._pyroTimeout = 5
        with pytest.raises(CommunicationError):
            proxy.echo(1)
    assert tls_server.peers == []


def test_certless_tls_client_is_refused(tls_server: TinyTlsServer, lab_ca: Any) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cafile=str(lab_ca.cafile))  # trusts the server but shows no certificate
    host, port = tls_server.locationStr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, OSError)):
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"PYRO")
                assert tls.recv(1) == b""  # TLS 1.3 reports the refusal on the first read
                raise OSError("closed by the server")
    assert tls_server.peers == []


def test_server_with_a_user_certificate_is_not_trusted_as_a_daemon(lab_ca: Any) -> None:
    server = TinyTlsServer(lab_ca.security("bob", "user"))
    uri = server.register(Echo, "echo")
    thread = threading.Thread(target=server.requestLoop, daemon=True)
    thread.start()
    try:
        with TlsProxy(uri, lab_ca.security("alice", "user")) as proxy:
            proxy._pyroTimeout = 5
            with pytest.raises(CommunicationError, match="not a lab daemon"):
                proxy.echo(1)
        with TlsProxy(uri, lab_ca.security("alice", "user"), daemon_only=False) as proxy:  # a callback receiver
            proxy._pyroTimeout = 5
            assert proxy.echo(3) == 3
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_silent_peer_does_not_stall_tls_clients(tls_server: TinyTlsServer, lab_ca: Any) -> None:
    host, port = tls_server.locationStr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5):  # connects, then says nothing
        time.sleep(0.2)
        with TlsProxy(tls_server.uri, lab_ca.security("alice", "user")) as proxy:
            proxy._pyroTimeout = 10
            assert proxy.echo("still served") == "still served"


def test_non_blocking_handshake_driven_by_a_selector(lab_ca: Any, foreign_ca: Any) -> None:
    import selectors

    from pyrolab_jupyter.core.tls import handshake_step, start_server_tls

    server_sec = lab_ca.security("tiny-daemon", "daemon")
    for client_sec, ok in ((lab_ca.security("alice", "user"), True), (foreign_ca.security("mallory", "user"), False)):
        listener = socket.create_server(("127.0.0.1", 0))
        result: dict[str, Any] = {}

        def client() -> None:
            try:
                with socket.create_connection(listener.getsockname(), timeout=5) as raw:
                    with client_sec.client_context().wrap_socket(raw) as tls:
                        tls.sendall(b"ping")
                        result["reply"] = tls.recv(4)
            except OSError as err:
                result["error"] = err

        thread = threading.Thread(target=client)
        thread.start()
        accepted, _ = listener.accept()
        accepted.setblocking(False)
        tls = start_server_tls(accepted, server_sec)
        with selectors.DefaultSelector() as sel:
            sel.register(tls, selectors.EVENT_READ)
            done, failed = False, None
            for _ in range(200):  # bounded
                try:
                    done = handshake_step(tls)
                except OSError as err:
                    failed = err
                    break
                if done:
                    break
                sel.select(0.05)
        if ok:
            assert done and peer_of(tls).name == "alice"
            tls.setblocking(True)
            assert tls.recv(4) == b"ping"
            tls.sendall(b"pong")
        else:
            assert failed is not None and not done
        thread.join(10)
        tls.close()
        listener.close()
        assert (result.get("reply") == b"pong") if ok else ("error" in result)
