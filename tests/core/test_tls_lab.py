"""A TLS lab in real processes: nameserver, daemon and clients each with their own certificate from `pyrolab certs`."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from conftest import TlsLab
from Pyro5.api import Proxy
from Pyro5.errors import PyroError

from pyrolab_jupyter import Lab
from pyrolab_jupyter.cli import main
from pyrolab_jupyter.core.tls import peer_of
from pyrolab_jupyter.errors import AccessDenied, LockLost, NameserverUnreachable, PyroLabError

pytestmark = pytest.mark.network

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


# --- the bulk path (core.bulk) under TLS -------------------------------------------------------------


def _same_array(a: Any, b: Any) -> None:
    import numpy as np

    assert type(b) is np.ndarray and b.dtype == a.dtype and b.shape == a.shape
    assert np.array_equal(a, b)


def test_bulk_arrays_over_tls_as_argument_and_result(tls_lab: TlsLab) -> None:
    """1 MB and 136 MiB (above the message cap) both ways, on a TLS bulk connection: never in clear."""
    import numpy as np

    from pyrolab_jupyter.core.frames import DEFAULT_MAX_MESSAGE

    dummy = tls_lab.lab("alice").connect("t.dummy", timeout=120)
    small = np.random.default_rng(5).random((1 << 20) // 8)
    _same_array(small, dummy.echo(small))
    channel = dummy._pyrolab_pool.channel
    assert channel.usable and channel._idle and all(isinstance(s, ssl.SSLSocket) for s in channel._idle)
    assert peer_of(channel._idle[0]).name == "tls-bench"  # the daemon's own certificate
    big = np.arange((DEFAULT_MAX_MESSAGE + (8 << 20)) // 8, dtype=np.float64)
    back = dummy.echo(big)
    assert back.shape == big.shape and back[-1] == big[-1] and np.array_equal(back[::4096], big[::4096])
    assert channel.usable


def test_a_bulk_ticket_is_claimed_only_by_its_certificate(tls_lab: TlsLab) -> None:
    """alice and bob call from the same address: bob can neither claim alice's upload nor fetch her result."""
    import numpy as np
    from Pyro5.api import URI

    from pyrolab_jupyter.core import bulk
    from pyrolab_jupyter.core.proxies import new_proxy

    uri = tls_lab.daemon.uris["t.dummy"]
    where = URI(uri)
    alice_sec, bob_sec = tls_lab.ca.security("alice"), tls_lab.ca.security("bob")
    arr = np.arange(1 << 16, dtype=np.float64)
    upload = bulk.Channel(where.host, where.port, 20, alice_sec).put(arr)
    assert upload is not None
    ticket = {"__pyrolab__": "bulk", "descr": "<f8", "shape": [arr.size], **upload}
    with new_proxy(uri, 20, bob_sec) as bob:
        with pytest.raises(PyroLabError, match="unknown here"):
            bob.dtype_of(ticket)
    with new_proxy(uri, 20, alice_sec) as alice:
        assert alice.dtype_of(ticket) == f"<f8 ({arr.size},) C"

    dummy = tls_lab.lab("alice").connect("t.dummy", timeout=20)
    channel = dummy._pyrolab_pool.channel
    bob_channel = bulk.Channel(where.host, where.port, 20, bob_sec)
    refused: list[str] = []
    real_get = channel.get

    def bob_first(result_ticket: dict[str, Any]) -> Any:
        with pytest.raises(bulk.BulkError, match="no such array") as err:
            bob_channel.get(result_ticket)
        refused.append(str(err.value))
        return real_get(result_ticket)

    channel.get = bob_first  # type: ignore[method-assign]
    _same_array(arr, dummy.echo(arr))
    assert refused  # bob asked first, was refused, and alice still got her result
    bob_channel.close()


def test_a_plain_bulk_connection_to_a_tls_daemon_is_refused(tls_lab: TlsLab, caplog: Any) -> None:
    import logging
    import struct

    import numpy as np
    from Pyro5.api import URI

    from pyrolab_jupyter.core import bulk

    where = URI(tls_lab.daemon.uris["t.dummy"])
    with socket.create_connection((where.host, where.port), timeout=20) as raw:
        raw.sendall(struct.pack(">4s1s3x16sQ8x", bulk.MAGIC, b"G", b"y" * 16, 80))
        try:
            answer = raw.recv(16)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # closed at the TLS handshake: no bulk answer in clear
    plain = bulk.Channel(where.host, where.port, 20)  # a client without a certificate
    with caplog.at_level(logging.INFO, logger="pyrolab_jupyter.core.bulk"):
        assert plain.put(np.zeros(1 << 16)) is None
        assert plain.put(np.zeros(1 << 16)) is None
    assert not plain.usable
    assert sum("does not take bulk uploads" in r.message for r in caplog.records) == 1
    dummy = tls_lab.lab("alice").connect("t.dummy", timeout=20)
    assert dummy.echo(np.arange(1 << 16)).sum() == sum(range(1 << 16))  # the daemon serves on
