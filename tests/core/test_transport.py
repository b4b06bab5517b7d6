"""The guarded server under real daemons and nameservers: hostile frames, idle and slow sockets, one-way floods."""

from __future__ import annotations

import marshal
import resource
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import wait_for
from labservices import Dummy
from Pyro5 import protocol
from Pyro5.api import Proxy
from rawwire import (
    MARSHAL,
    attackers,
    closed_by_peer,
    closed_now,
    connect_from,
    frame,
    host_port,
    send_and_wait_close,
    status,
)

from pyrolab_jupyter import Lab
from pyrolab_jupyter.core.client import RemoteService
from pyrolab_jupyter.core.daemon import LabDaemon
from pyrolab_jupyter.core.limits import Limits
from pyrolab_jupyter.errors import InvalidArgument

pytestmark = pytest.mark.network

DUMMY = {"t.dummy": "labservices:Dummy"}
MiB = 1024


@pytest.fixture(autouse=True)
def _open_files() -> Iterator[None]:
    """1,100 sockets here and as many in the daemon process (which inherits the raised limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def served(address: str, timeout: float = 10.0) -> bool:
    with Proxy(f"PYRO:Pyro.Daemon@{address}") as proxy:
        proxy._pyroTimeout = timeout
        proxy.ping()
    return True


def hostile_frames() -> dict[str, bytes]:
    bomb = zlib.compress(b"\0" * (256 * 1024 * 1024), 9)  # 256 KiB that would expand to 256 MiB
    forged = b"(" + (500_000_000).to_bytes(4, "little")  # a tuple claiming 500 million items
    return {
        "forged marshal tuple": frame(protocol.MSG_CONNECT, MARSHAL, 0, forged),
        "compression bomb": frame(protocol.MSG_CONNECT, MARSHAL, protocol.FLAGS_COMPRESSED, bomb),
        "4 GiB declared": frame(protocol.MSG_CONNECT, MARSHAL, 0, b"", declared=2**32 - 1),
        "not Pyro at all": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 40,
    }


def _assert_frames_cost_nothing(pid: int, address: str) -> None:
    before = status(pid, "VmHWM")
    for name, data in hostile_frames().items():
        assert send_and_wait_close(address, data), f"{name}: the server should close the connection"
    grown = status(pid, "VmHWM") - before
    assert grown < 64 * MiB, f"peak memory grew by {grown // MiB} MiB on hostile frames"
    assert served(address)


def test_hostile_frames_cost_a_daemon_nothing(daemon_factory: Any) -> None:
    handle = daemon_factory(DUMMY, None)
    _assert_frames_cost_nothing(handle.pid, handle.address)


def test_hostile_frames_cost_the_nameserver_nothing(nameserver: Any, lab: Lab) -> None:
    assert nameserver.proc is not None
    _assert_frames_cost_nothing(nameserver.proc.pid, nameserver.address)
    assert lab.services() == []


def test_an_oversized_call_is_refused_with_a_clear_error() -> None:
    daemon = LabDaemon(max_message=64 * 1024)
    try:
        uri = daemon.add("t.dummy", Dummy())
        daemon.start()
        dummy = RemoteService(Lab("127.0.0.1:1"), "t.dummy", uri, 10.0)
        with pytest.raises(InvalidArgument, match="exceeds this server's limit of 65536 bytes"):
            dummy.echo(b"x" * 200_000)
        assert dummy.echo(b"y" * 1000) == b"y" * 1000  # a new connection, served as before
    finally:
        daemon.stop()


def test_idle_and_slow_sockets_do_not_starve_a_fresh_client(daemon_factory: Any) -> None:
    handle = daemon_factory(DUMMY, None)
    held = attackers(handle.address, 1000)  # from 10 addresses: 100 each, under the per-peer cap
    slow = attackers(handle.address, 100, first=20)
    stop = threading.Event()

    def drip() -> None:  # one byte a second on each slow socket
        while not stop.wait(1.0):
            for sock in slow:
                try:
                    sock.send(b"P")
                except OSError:
                    pass

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        time.sleep(1.5)
        assert served(handle.address, timeout=10.0)  # generous: on an idle machine it takes milliseconds
        threads = status(handle.pid, "Threads")
        assert threads < 300, f"{threads} threads with 1,100 sockets held"
        # slow senders are cut once their message is overdue (frame_timeout, 10 s by default)
        assert all(closed_by_peer(sock, 30.0) for sock in slow[:5])
        assert served(handle.address)
    finally:
        stop.set()
        dripper.join(5)
        for sock in held + slow:
            sock.close()


def test_connections_per_peer_are_capped_and_others_still_served(daemon_factory: Any) -> None:
    handle = daemon_factory(DUMMY, None)
    cap = Limits().max_per_peer
    socks = [connect_from("127.0.0.3", handle.address) for _ in range(cap + 20)]
    try:
        time.sleep(1.0)
        refused = [s for s in socks if closed_now(s)]  # held ones stay open until frame_timeout (10 s)
        assert len(refused) == 20, f"{len(refused)} of {cap + 20} refused; expected the 20 over the cap"
        assert served(handle.address)  # another address is not affected
    finally:
        for sock in socks:
            sock.close()


def test_oneway_calls_run_in_the_pool_in_order(daemon_factory: Any) -> None:
    handle = daemon_factory(DUMMY, None)
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], status(handle.pid, "Threads"))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with Proxy(handle.uris["t.dummy"]) as proxy:
            proxy._pyroTimeout = 30
            proxy._pyroBind()
            proxy._pyroOneway.add("set_power")
            for i in range(2000):
                proxy.set_power(i % 50)
            proxy._pyroOneway.clear()
            wait_for(lambda: proxy.power == 1999 % 50, timeout=60)
    finally:
        done.set()
        watcher.join(5)
    assert 0 < peak[0] < 300, f"2,000 one-way calls peaked at {peak[0]} threads"


def test_idle_connections_are_closed_but_not_a_lock_holders() -> None:
    daemon = LabDaemon(limits=Limits(idle_timeout=1.0))
    try:
        uri = daemon.add("t.dummy", Dummy())
        daemon.start()
        mine = RemoteService(Lab("127.0.0.1:1"), "t.dummy", uri, 10.0)
        plain = RemoteService(Lab("127.0.0.1:1"), "t.dummy", uri, 10.0)
        mine.lock(lease=60)
        other = socket.create_connection(("127.0.0.1", int(daemon.address.rsplit(":", 1)[1])))
        hello = marshal.dumps({"handshake": "hello", "object": "Pyro.Daemon"})
        other.sendall(frame(protocol.MSG_CONNECT, MARSHAL, 0, hello))  # a plain client's handshake, then idle
        assert closed_by_peer(other, 20.0), "an idle connection should be closed after idle_timeout"
        other.close()
        time.sleep(2.5)
        assert mine.lock_info()["mine"], "the lock holder's idle connection must stay, and the lock with it"
        mine.unlock()
        wait_for(lambda: daemon.connection_count() == 0, timeout=20)  # no lock: idle connections are closed
        assert plain.describe()["name"] == "t.dummy"  # the pool notices and connects afresh
        assert mine.power == 1.0
    finally:
        daemon.stop()


def test_memory_budget_pauses_big_uploads_but_not_new_clients() -> None:
    daemon = LabDaemon(limits=Limits(max_message=16 * 1024 * 1024, max_buffered=1024 * 1024))
    uri = daemon.add("t.dummy", Dummy())
    daemon.start()
    address = daemon.address
    hogs = []
    try:
        for _ in range(4):  # each declares 8 MiB and sends 2 MiB of it
            sock = socket.create_connection(host_port(address), timeout=10)
            sock.sendall(frame(protocol.MSG_CONNECT, MARSHAL, 0, b"x" * (2 * 1024 * 1024), declared=8 * 1024 * 1024))
            hogs.append(sock)
        time.sleep(1.0)
        assert daemon.server._buffered <= 1024 * 1024 + 4 * 256 * 1024
        dummy = RemoteService(Lab("127.0.0.1:1"), "t.dummy", uri, 10.0)  # a new client is served meanwhile
        dummy.set_power(2.0)
        assert dummy.power == 2.0
    finally:
        for sock in hogs:
            sock.close()
        daemon.stop()


def test_a_client_that_stops_reading_its_replies_is_cut_and_others_are_served(caplog) -> None:
    """Replies go out through a socket a worker holds blocking (core.peers.Peer.lend): a reply nobody takes
    still ends after send_timeout, the connection is cut, and other clients are served meanwhile."""
    import logging

    daemon = LabDaemon(limits=Limits(send_timeout=1.0))
    try:
        uri = daemon.add("t.dummy", Dummy())
        daemon.start()
        greedy = socket.create_connection(host_port(daemon.address), timeout=10)
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        hello = marshal.dumps({"handshake": "hello", "object": "t.dummy"})
        greedy.sendall(frame(protocol.MSG_CONNECT, MARSHAL, 0, hello))
        time.sleep(0.3)
        call = frame(protocol.MSG_INVOKE, MARSHAL, 0, marshal.dumps(("t.dummy", "echo", [b"x" * (1 << 20)], {})))

        def flood() -> None:
            try:
                for _ in range(16):  # 16 MiB of replies, never read: the daemon's sends fill both socket buffers
                    greedy.sendall(call)
            except OSError:  # cut while still sending
                pass

        with caplog.at_level(logging.DEBUG, logger="pyrolab_jupyter.core.transport"):
            sender = threading.Thread(target=flood, daemon=True)
            sender.start()
            time.sleep(0.5)
            dummy = RemoteService(Lab("127.0.0.1:1"), "t.dummy", uri, 10.0)
            dummy.set_power(2.0)  # served while the greedy connection's worker waits to send
            assert dummy.power == 2.0
            wait_for(lambda: any("did not take a reply within 1 s" in r.getMessage() for r in caplog.records),
                     timeout=30)  # cut (reading here would take the replies and unblock it)
            sender.join(10)
        assert closed_by_peer(greedy, 10.0)
        greedy.close()
        dummy.set_power(3.0)
        assert dummy.power == 3.0
    finally:
        daemon.stop()
