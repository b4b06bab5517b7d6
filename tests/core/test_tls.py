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


# --- TlsPipe: the bulk path's client connection (TLS through memory buffers) ---------------------------


def _one_tls_peer(security: Any, serve: Any) -> tuple[socket.socket, threading.Thread]:
    """A listener on 127.0.0.1 whose first connection, TLS-accepted with ``security``, is given to ``serve``."""
    from pyrolab_jupyter.core.tls import accept_tls

    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        conn, _ = listener.accept()
        conn.settimeout(10)
        try:
            with accept_tls(conn, security) as tls:
                serve(tls)
        except OSError:
            pass  # the client gave up on us: what some tests want

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener, thread


def _recv_exactly(sock: Any, n: int) -> bytearray:
    out = bytearray(n)
    view, got = memoryview(out), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        assert k, f"closed after {got} of {n} bytes"
        got += k
    return out


def test_tls_pipe_moves_many_records_both_ways_and_ends_cleanly(lab_ca: Any) -> None:
    from pyrolab_jupyter.core.tls import connect_tls_pipe

    data = bytes(range(256)) * ((3 << 20) // 256) + b"odd tail"  # 3 MiB + 8: about 200 records each way

    def echo(tls: ssl.SSLSocket) -> None:
        tls.sendall(_recv_exactly(tls, len(data)))

    listener, thread = _one_tls_peer(lab_ca.security("tiny-daemon", "daemon"), echo)
    with listener:
        pipe = connect_tls_pipe(*listener.getsockname()[:2], lab_ca.security("alice", "user"), 10)
        try:
            assert peer_of(pipe).name == "tiny-daemon" and pipe.cipher() is not None
            pipe.sendall(memoryview(data))
            assert _recv_exactly(pipe, len(data)) == data
            thread.join(10)  # the peer closed its end
            assert pipe.recv_into(bytearray(10)) == 0
        finally:
            pipe.close()


def test_tls_pipe_trusts_only_a_daemon_certificate(lab_ca: Any, foreign_ca: Any) -> None:
    from pyrolab_jupyter.core.tls import connect_tls_pipe

    for server_sec, error in ((lab_ca.security("bob", "user"), "not a lab daemon"),
                              (foreign_ca.security("mallory-daemon", "daemon"), None)):
        listener, thread = _one_tls_peer(server_sec, lambda tls: None)
        with listener:
            with pytest.raises(CommunicationError if error else ssl.SSLError, match=error):
                connect_tls_pipe(*listener.getsockname()[:2], lab_ca.security("alice", "user"), 10)
        thread.join(10)


def test_tls_pipe_handshake_has_a_deadline(lab_ca: Any) -> None:
    """A server that answers the ClientHello byte by byte, each in time for the socket timeout, is cut."""
    from pyrolab_jupyter.core.tls import connect_tls_pipe

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)  # the ClientHello
            try:
                conn.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record of 16 KiB announced...
                for _ in range(100):  # ...and sent a byte at a time (bounded: 10 s at most)
                    if stop.wait(0.1):
                        break
                    conn.sendall(b"\x00")
            except OSError:
                pass

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    with listener:
        with pytest.raises(TimeoutError, match="took too long"):
            connect_tls_pipe(*listener.getsockname()[:2], lab_ca.security("alice", "user"), 1.0)
    stop.set()
    thread.join(10)
