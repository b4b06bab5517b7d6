"""A TLS lab in real processes: nameserver, daemon and clients each with their own certificate from `pyrolab certs`."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import free_port
from Pyro5.api import Proxy
from Pyro5.errors import PyroError

from pyrolab_jupyter import Lab, start_daemon
from pyrolab_jupyter.cli import main
from pyrolab_jupyter.core.tls import peer_of
from pyrolab_jupyter.errors import AccessDenied, LockLost, NameserverUnreachable, PyroLabError

pytestmark = pytest.mark.network

_NS_CHILD = """
import sys
from pyrolab_jupyter import Security, start_nameserver
sec = Security(sys.argv[2], sys.argv[3], sys.argv[4])
ns = start_nameserver(host="127.0.0.1", port=int(sys.argv[1]), check_interval=0.5, security=sec)
print(ns.address, flush=True)
sys.stdin.read()
ns.stop()
"""


class TlsLab:
    """A TLS nameserver process (cert ``tls-ns``) and a daemon process (cert ``tls-bench``) hosting t.dummy."""

    def __init__(self, lab_ca: Any) -> None:
        self.ca = lab_ca
        ns_sec = lab_ca.security("tls-ns", "daemon")
        self.address = f"127.0.0.1:{free_port()}"
        self.ns = subprocess.Popen(
            [sys.executable, "-c", _NS_CHILD, self.address.rsplit(":", 1)[1], str(ns_sec.certfile),
             str(ns_sec.keyfile), str(ns_sec.cafile)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.ns.stdout is not None and self.ns.stdout.readline().strip() == self.address
        self.daemon = start_daemon({"t.dummy": "labservices:Dummy"}, nameserver=self.address, spawn=True,
                                   security=lab_ca.security("tls-bench", "daemon"))

    def lab(self, name: str, role: str = "user") -> Lab:
        return Lab(self.address, timeout=10, security=self.ca.security(name, role))

    def stop(self) -> None:
        self.daemon.stop()
        assert self.ns.stdin is not None and self.ns.stdout is not None
        self.ns.stdin.close()
        try:
            self.ns.wait(10)
        except subprocess.TimeoutExpired:
            self.ns.kill()
            self.ns.wait(5)
        self.ns.stdout.close()


@pytest.fixture
def tls_lab(lab_ca: Any) -> Iterator[TlsLab]:
    lab = TlsLab(lab_ca)
    yield lab
    lab.stop()


def _server_cert_name(address: str, security: Any) -> str:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with security.client_context().wrap_socket(raw) as tls:
            return peer_of(tls).name


def test_calls_locks_and_history_name_the_certificate(tls_lab: TlsLab) -> None:
    lab = tls_lab.lab("alice")
    assert [row["name"] for row in lab.services()] == ["t.dummy"]
    dummy = lab.connect("t.dummy")
    dummy.set_power(2.5)
    assert dummy.power == 2.5
    with dummy.lock(lease=30) as handle:
        assert handle.holder == f"alice (pid {os.getpid()})"
    last = dummy.history(n=3)
    assert [r["kind"] for r in last] == ["call", "lock", "unlock"]
    assert {r["who"] for r in last} == {f"alice (pid {os.getpid()})"}


def test_each_server_presents_its_own_certificate(tls_lab: TlsLab, lab_ca: Any) -> None:
    me = lab_ca.security("alice", "user")
    assert _server_cert_name(tls_lab.address, me) == "tls-ns"
    assert _server_cert_name(tls_lab.daemon.address, me) == "tls-bench"


def test_plain_certless_and_foreign_clients_are_refused(tls_lab: TlsLab, foreign_ca: Any, lab_ca: Any) -> None:
    with pytest.raises(NameserverUnreachable, match="PYROLAB_CERT"):
        Lab(tls_lab.address, timeout=5).services()
    with pytest.raises(NameserverUnreachable, match="same lab CA"):
        Lab(tls_lab.address, timeout=5, security=foreign_ca.security("mallory", "admin")).services()
    with Proxy(tls_lab.daemon.uris["t.dummy"]) as plain:
        plain._pyroTimeout = 5
        with pytest.raises(PyroError):
            plain.set_power(1.0)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cafile=str(lab_ca.cafile))
    host, port = tls_lab.daemon.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with pytest.raises(OSError):  # ssl.SSLError is an OSError; TLS 1.3 may report it on the first read
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"PYRO")
                if tls.recv(1) == b"":
                    raise OSError("closed by the server")
    assert tls_lab.lab("alice").connect("t.dummy").power == 1.0  # still serving


def test_users_may_not_write_to_the_nameserver(tls_lab: TlsLab) -> None:
    lab = tls_lab.lab("alice")
    uri = lab.lookup("t.dummy")
    with pytest.raises(AccessDenied, match="OU=daemon"):
        lab._ask("register", "t.dummy", "PYRO:evil@127.0.0.1:1", safe=False)
    with pytest.raises(AccessDenied):
        lab._ask("remove", None, None, ".*")
    assert lab.lookup("t.dummy") == uri


def test_force_unlock_needs_an_admin_certificate(tls_lab: TlsLab) -> None:
    holder = tls_lab.lab("bob").connect("t.dummy")
    holder.lock(lease=60)
    with pytest.raises(AccessDenied, match="admin"):
        tls_lab.lab("alice").connect("t.dummy").force_unlock()
    admin = tls_lab.lab("carol", "admin").connect("t.dummy")
    assert admin.force_unlock() == f"bob (pid {os.getpid()})"
    records = admin.history(n=2)
    assert [(r["kind"], r["outcome"], r["who"].split(" ")[0]) for r in records] == [
        ("force_unlock", "AccessDenied", "alice"), ("force_unlock", "ok", "carol")]
    with pytest.raises(LockLost):  # the holder learns at its next change
        holder.set_power(1.0)


def test_cli_reads_the_certificate_from_the_environment(tls_lab: TlsLab, lab_ca: Any,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tls_lab.lab("alice").connect("t.dummy").set_power(4.0)
    assert main(["ls", "--nameserver", tls_lab.address]) == 1  # plain: refused
    capsys.readouterr()
    sec = lab_ca.security("alice", "user")
    monkeypatch.setenv("PYROLAB_CERT", str(sec.certfile))
    monkeypatch.setenv("PYROLAB_KEY", str(sec.keyfile))
    monkeypatch.setenv("PYROLAB_CA", str(sec.cafile))
    assert main(["ls", "--nameserver", tls_lab.address]) == 0
    assert "t.dummy" in capsys.readouterr().out
    assert main(["history", "t.dummy", "--nameserver", tls_lab.address, "-n", "1"]) == 0
    assert f"alice (pid {os.getpid()})" in capsys.readouterr().out


def test_subscriptions_are_called_back_over_tls(tls_lab: TlsLab) -> None:
    import queue

    dummy = tls_lab.lab("alice").connect("t.dummy")
    seen: queue.Queue[tuple[str, Any]] = queue.Queue()
    sub = dummy.subscribe(lambda prop, value, t: seen.put((prop, value)))
    try:
        dummy.power = 7.0
        for _ in range(50):
            prop, value = seen.get(timeout=10)
            if prop == "power" and value == 7.0:
                break
        else:
            raise AssertionError("no update arrived")
    finally:
        sub.close()


def test_a_plain_and_a_tls_lab_in_one_process(tls_lab: TlsLab, lab: Lab, daemon_factory: Any) -> None:
    daemon_factory({"p.dummy": "labservices:Dummy"}, lab.address)
    plain = lab.connect("p.dummy")
    secure = tls_lab.lab("alice").connect("t.dummy")
    plain.set_power(1.5)
    secure.set_power(3.5)
    assert (plain.power, secure.power) == (1.5, 3.5)
    assert "unverified" in plain.history(n=1)[0]["who"]
    code = textwrap.dedent(f"""
        from pyrolab_jupyter import start_daemon, start_nameserver, Lab, Security
        sec = Security({str(tls_lab.ca.folder / 'tls-bench.pem')!r}, {str(tls_lab.ca.folder / 'tls-bench.key')!r},
                       {str(tls_lab.ca.cafile)!r})
        ns = start_nameserver(port=0, security=sec)
        plain_ns = start_nameserver(port=0)
        d = start_daemon({{"x.dummy": "labservices:Dummy"}}, nameserver=ns.address, security=sec)
        p = start_daemon({{"y.dummy": "labservices:Dummy"}}, nameserver=plain_ns.address)
        assert Lab(ns.address, security=sec).connect("x.dummy").power == 1.0
        assert Lab(plain_ns.address).connect("y.dummy").power == 1.0
        d.stop(); p.stop(); ns.stop(); plain_ns.stop()
        print("both")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "both", done.stderr[-3000:]


def test_access_denied_is_a_pyrolab_error() -> None:
    assert issubclass(AccessDenied, PyroLabError) and issubclass(AccessDenied, PermissionError)


def test_silent_and_half_open_peers_do_not_stall_tls_clients(tls_lab: TlsLab) -> None:
    host, port = tls_lab.daemon.address.rsplit(":", 1)
    silent = [socket.create_connection((host, int(port)), timeout=5) for _ in range(20)]  # say nothing
    hello = socket.create_connection((host, int(port)), timeout=5)
    hello.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello that never completes
    try:
        dummy = tls_lab.lab("alice").connect("t.dummy", timeout=5)
        for _ in range(5):
            fresh = tls_lab.lab("alice").connect("t.dummy", timeout=5)  # a new TLS handshake each time
            assert fresh.power == dummy.power
            fresh.disconnect()
    finally:
        for sock in silent + [hello]:
            sock.close()


def test_large_messages_and_quick_successive_calls_over_tls(tls_lab: TlsLab) -> None:
    import numpy as np

    dummy = tls_lab.lab("alice").connect("t.dummy")
    blob = bytes(range(256)) * 20_000  # 5 MB: hundreds of TLS records each way
    assert dummy.echo(blob) == blob
    array = np.arange(1_000_000, dtype=np.float64)
    assert dummy.dtype_of(array) == "<f8 (1000000,) C"
    for i in range(200):  # back-to-back calls: the worker lingers for the next one on the TLS socket
        assert dummy.echo(i) == i
