"""Large arrays out of band (core.bulk): real daemons in their own processes, real sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import struct

import numpy as np
import pytest
from Pyro5.api import Proxy

from pyrolab_jupyter.core import bulk, serialization
from pyrolab_jupyter.core.frames import DEFAULT_MAX_MESSAGE

pytestmark = pytest.mark.network


@pytest.fixture
def dummy(nameserver, daemon_factory, lab):
    daemon_factory({"dummy": "labservices:Dummy"}, nameserver=nameserver.uri)
    return lab.connect("dummy", timeout=60)


def _same(a: np.ndarray, b: np.ndarray) -> None:
    assert type(b) is np.ndarray
    assert b.dtype == a.dtype and b.shape == a.shape
    assert b.flags.f_contiguous == a.flags.f_contiguous and b.flags.c_contiguous == a.flags.c_contiguous
    assert np.array_equal(a, b)


_POINT = np.dtype([("x", "<f8"), ("y", ">i4"), ("tag", "S3"), ("m", "<u2", (2,))])


@pytest.mark.parametrize("nbytes", [1 << 10, 300 << 10, 1 << 20, 10 << 20], ids=["1KB", "300KB", "1MB", "10MB"])
def test_each_size_class_round_trips_as_argument_and_result(dummy, nbytes):
    arr = np.random.default_rng(1).random(nbytes // 8)
    _same(arr, dummy.echo(arr))


@pytest.mark.parametrize("make", [
    lambda: np.arange(400_000, dtype="<i2").reshape(400, 1000),
    lambda: np.asfortranarray(np.random.default_rng(2).random((300, 500))),
    lambda: np.arange(300_000, dtype=">u4"),
    lambda: (np.arange(200_000) + 1j).astype(np.complex64),
    lambda: np.zeros(60_000, dtype=_POINT),
    lambda: np.random.default_rng(3).random((1000, 600))[::2, ::3],  # neither C nor F: goes as C
    lambda: np.ones((64, 64, 64), dtype=bool),
], ids=["int16-2d", "fortran", "big-endian", "complex64", "structured", "strided", "bool-3d"])
def test_dtypes_shapes_and_orders(dummy, make):
    arr = make()
    if arr.dtype == _POINT:
        arr["x"] = np.arange(len(arr))
        arr["tag"] = b"abc"
        arr["m"][:, 1] = 7
    back = dummy.echo(arr)
    expected = arr if (arr.flags.c_contiguous or arr.flags.f_contiguous) else np.ascontiguousarray(arr)
    _same(expected, back)


def test_arrays_nested_in_lists_and_dicts(dummy):
    big = np.arange(100_000, dtype=np.float64)
    back = dummy.echo({"a": [big, 1, (big[:10], "x")], "b": big * 2})
    _same(big, back["a"][0])
    _same(big[:10], back["a"][2][0])
    _same(big * 2, back["b"])


def test_big_arrays_do_not_go_through_the_message(dummy, monkeypatch):
    """Argument and result both travel as tickets: the Pyro5 message stays small."""
    sent: list[object] = []
    real = serialization.encode

    def spy(value, bulk_side=None):
        out = real(value, bulk_side)
        sent.append(out)
        return out

    import pyrolab_jupyter.core.client as client_module
    monkeypatch.setattr(client_module, "encode", spy)
    arr = np.arange(1 << 18, dtype=np.float64)  # 2 MiB
    _same(arr, dummy.echo(arr))
    assert sent[0][0]["__pyrolab__"] == "bulk"
    assert isinstance(sent[0][0]["token"], bytes) and sent[0][0]["nbytes"] == arr.nbytes


def test_an_idle_bulk_connection_that_was_closed_is_replaced(dummy):
    arr = np.arange(1 << 16, dtype=np.float64)
    _same(arr, dummy.echo(arr))
    channel = dummy._pyrolab_pool.channel
    assert channel._idle
    for sock in channel._idle:
        sock.shutdown(socket.SHUT_RDWR)  # as if the daemon had closed it (idle timeout, restart)
    _same(arr, dummy.echo(arr))
    assert channel.usable


def test_above_the_message_cap(dummy):
    n = (DEFAULT_MAX_MESSAGE + (8 << 20)) // 8  # 136 MiB, both ways
    arr = np.arange(n, dtype=np.float64)
    back = dummy.echo(arr)
    assert back.shape == arr.shape and back[-1] == n - 1 and np.array_equal(back[::4096], arr[::4096])


def test_stock_pyro5_client_falls_back_inline_and_cap_still_holds(dummy, caplog):
    proxy = Proxy(dummy._pyrolab_uri)
    proxy._pyroSerializer = "marshal"
    proxy._pyroTimeout = 60
    with proxy:
        arr = np.arange(1 << 18, dtype=np.float64)
        back = proxy.echo(serialization.encode(arr))
        assert back["__pyrolab__"] == "ndarray"  # inline: the stock client never asked for tickets
        _same(arr, serialization.decode(back))
        # the message cap still holds on the normal path
        with pytest.raises(Exception, match="max_message|exceeds"):
            proxy.echo(b"\0" * (DEFAULT_MAX_MESSAGE + 1))
    assert dummy.echo(3) == 3  # the daemon serves on


def test_a_foreign_ticket_is_refused(dummy):
    """A ticket made up by the caller (no upload) names the problem; nothing else breaks."""
    fake = {"__pyrolab__": "bulk", "descr": "<f8", "shape": [10], "order": "C", "nbytes": 80, "token": b"x" * 16}
    proxy = Proxy(dummy._pyrolab_uri)
    proxy._pyroSerializer = "marshal"
    proxy._pyroTimeout = 20
    with proxy, pytest.raises(Exception, match="could not be decoded|no bulk channel"):
        proxy.echo(fake)
    assert dummy.echo([1, 2]) == [1, 2]


def _bulk_socket(uri: str) -> socket.socket:
    from Pyro5.api import URI
    where = URI(uri)
    return socket.create_connection((where.host, where.port), timeout=20)


def test_raw_bulk_requests_are_bounded(dummy):
    """Fetching an unknown token is refused with a reason; an upload above max_bulk is refused before its bytes."""
    with _bulk_socket(dummy._pyrolab_uri) as sock:
        sock.sendall(struct.pack(">4s1s3x16sQ8x", bulk.MAGIC, b"G", b"y" * 16, 80))
        status, length = struct.unpack(">4s4xQ", sock.recv(16, socket.MSG_WAITALL))
        assert status == b"ERR\0" and b"no such array" in sock.recv(length, socket.MSG_WAITALL)
        sock.sendall(struct.pack(">4s1s3x16sQ8x", bulk.MAGIC, b"P", bytes(16), 1 << 62))
        status, length = struct.unpack(">4s4xQ", sock.recv(16, socket.MSG_WAITALL))
        assert status == b"ERR\0" and b"max_bulk" in sock.recv(length, socket.MSG_WAITALL)
    assert dummy.echo(np.arange(3)).tolist() == [0, 1, 2]


def test_a_trickling_upload_is_cut_and_the_daemon_serves_on(dummy):
    """An upload that stalls is cut after frame_timeout (10 s); other callers are served meanwhile."""
    with _bulk_socket(dummy._pyrolab_uri) as sock:
        sock.sendall(struct.pack(">4s1s3x16sQ8x", bulk.MAGIC, b"P", bytes(16), 1 << 20))
        status, _ = struct.unpack(">4s4xQ", sock.recv(16, socket.MSG_WAITALL))
        assert status == b"OK\0\0"
        sock.sendall(b"\0" * 1000)  # then nothing
        assert dummy.echo(np.arange(1 << 16)).sum() == sum(range(1 << 16))
        sock.settimeout(30)
        assert sock.recv(16) == b""  # cut by the daemon


def test_channel_to_a_stock_pyro5_daemon_falls_back(python_child, caplog):
    """Our client against a daemon that does not speak the bulk path: one log line, then inline."""
    port = python_child(
        "import socket, sys\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(4); print(s.getsockname()[1], flush=True)\n"
        "c, _ = s.accept(); c.recv(40); c.close(); sys.stdin.read()\n")
    channel = bulk.Channel("127.0.0.1", int(port), 10)
    with caplog.at_level(logging.INFO, logger="pyrolab_jupyter.core.bulk"):
        assert channel.put(np.zeros(1 << 16)) is None
        assert channel.put(np.zeros(1 << 16)) is None
    assert not channel.usable
    assert sum("does not take bulk uploads" in r.message for r in caplog.records) == 1


def test_ticket_only_for_its_owner():
    stash = bulk.Stash(1 << 30)
    ticket = stash.offer(np.arange(10.0), "10.0.0.1")
    assert ticket is not None
    assert isinstance(stash.fetch(ticket["token"], "10.0.0.2"), str)
    assert np.array_equal(stash.fetch(ticket["token"], "10.0.0.1").view(np.float64), np.arange(10.0))
    assert isinstance(stash.fetch(ticket["token"], "10.0.0.1"), str)  # once only


def test_a_claim_by_another_caller_leaves_the_upload():
    """Under TLS the owner is the certificate: bob's attempt fails and alice can still claim her upload."""
    stash = bulk.Stash(1 << 30)
    assert stash.reserve(80) is None
    token = stash.keep(np.arange(80, dtype=np.uint8), "tls:alice (user)")
    ticket = {"token": token, "descr": "<f8", "shape": [10], "order": "C", "nbytes": 80}
    with pytest.raises(ValueError, match="unknown here"):
        stash.claim(ticket, "tls:bob (user)")
    assert stash.claim(ticket, "tls:alice (user)").shape == (10,)
    with pytest.raises(ValueError, match="unknown here"):
        stash.claim(ticket, "tls:alice (user)")  # once only


def test_results_are_copied_unless_read_only():
    """A service that reuses its buffer still hands out what it returned; a read-only one is sent as is."""
    stash = bulk.Stash(1 << 30)
    frame = np.arange(10.0)
    ticket = stash.offer(frame, "a")
    frame[:] = -1
    assert stash.fetch(ticket["token"], "a").view(np.float64).tolist() == list(range(10))
    frame.setflags(write=False)
    ticket = stash.offer(frame, "a")
    assert np.shares_memory(stash.fetch(ticket["token"], "a"), frame)


def test_bulk_path_unused_by_closed_daemon_is_a_clean_error():
    channel = bulk.Channel("127.0.0.1", _closed_port(), 2)
    with pytest.raises(bulk.BulkError, match="cannot open a bulk connection"):
        channel.put(np.zeros(1 << 16))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
