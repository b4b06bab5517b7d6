"""The lean request path (core.lane) between our proxies and our daemons, and where it steps aside for Pyro5."""

from __future__ import annotations

import array
import logging
import marshal
import uuid

import numpy as np
import pytest
from Pyro5 import protocol
from Pyro5.api import Proxy

from pyrolab_jupyter.core import lane
from pyrolab_jupyter.core.daemon import LabDaemon
from pyrolab_jupyter.core.frames import check_body, parse_header
from pyrolab_jupyter.core.locks import ClientInfo
from pyrolab_jupyter.core.servant import lane_target
from pyrolab_jupyter.core.wire import BULK, WAIT
from pyrolab_jupyter.errors import InvalidArgument


def _lent(remote) -> list:
    """The idle proxies of a RemoteService's pool (what the next call borrows)."""
    return [proxy for proxy, _ in remote._pyrolab_pool._idle]


def test_calls_to_our_daemon_take_the_lane_and_stock_clients_still_work(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    remote.set_power(7.0)
    assert remote.power == 7.0
    assert all(proxy._pyrolab_lane for proxy in _lent(remote)) and _lent(remote)
    with pytest.raises(InvalidArgument, match="mw"):
        remote.set_power(99.0)  # an error answered on the lane is the daemon's own, connection kept
    assert remote.power == 7.0 and _lent(remote)[0]._pyroConnection is not None
    for serializer in ("marshal", "serpent", "json"):  # stock Pyro5: marshal lands on the lane, the others not
        with Proxy(remote._pyrolab_uri) as stock:
            stock._pyroSerializer = serializer
            stock.set_power(3.0)
            assert stock._pyroInvoke("__getattr__", ("power",), {}) == 3.0  # Pyro5's .power breaks on marshal


def test_large_values_cross_the_lane_both_ways(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    blob = bytes(range(256)) * 800  # 200 KiB inline: one header + gathered body, several recv on the way back
    assert remote.echo(blob) == blob
    arr = np.arange(20_000, dtype=np.float64)  # 160 KB: under the bulk threshold, so inline too
    back = remote.echo(arr)
    assert back.dtype == arr.dtype and np.array_equal(back, arr)


def test_a_value_marshal_cannot_carry_goes_through_pyro5(lab, nameserver, daemon_factory, caplog):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    with caplog.at_level(logging.INFO, logger="pyrolab_jupyter.core.lane"):
        for _ in range(3):
            assert remote.echo(uuid.UUID(int=1)) == str(uuid.UUID(int=1))  # Pyro5's marshal serializer: a str
    told = [r for r in caplog.records if "marshal cannot carry" in r.getMessage()]
    assert len(told) == 1 and "echo" in told[0].getMessage()  # the reason, logged once
    assert remote.echo([1, 2]) == [1, 2]  # and the next call is on the lane again
    assert remote.echo(array.array("d", [1.0, 2.0])) == [1.0, 2.0]  # a list, as Pyro5 sends it, not raw bytes


def test_parameters_named_like_the_call_path_reach_the_service(lab, nameserver, daemon_factory):
    daemon_factory({"t.roster": "labservices:Roster"}, nameserver.address)
    roster = lab.connect("t.roster")
    assert roster.enrol("ada") == "ada:join:guest"
    assert roster.enrol("bob", action="leave", kind="staff") == "bob:leave:staff"
    assert roster.enrol(member="cy", kind="x") == "cy:join:x"


def test_the_lane_serves_only_what_a_servant_exposes() -> None:
    import labservices

    daemon = LabDaemon()
    try:
        daemon.add("t.dummy", labservices.Dummy())
        servant = daemon.objectsById["t.dummy"]
        assert lane_target(servant, "set_power", [1.0], {}) is not None
        assert lane_target(servant, "__getattr__", ["power"], {}) is not None
        assert lane_target(servant, "__setattr__", ["power", 2.0], {}) is not None
        assert lane_target(servant, "describe", [], {}) is not None
        for method, args in [("_invoke", ["set_power", [], {}]), ("__getattr__", ["_service"]),
                             ("__getattr__", [["power"]]), ("__setattr__", ["mode_unknown", 1]),
                             ("nonexistent", [])]:
            assert lane_target(servant, method, args, {}) is None, method  # Pyro5's path refuses these
        assert lane_target(daemon.objectsById["Pyro.Daemon"], "get_metadata", ["t.dummy"], {}) is None

        class Conn:  # what the transport hands the lane: an address, a client, a way to answer
            address = ("127.0.0.1", 1)
            pyrolab_client = ClientInfo("c1", "tester (pid 1)")
            sent: list[bytes] = []

            def send(self, data: bytes) -> None:
                self.sent.append(bytes(data))

        def message(obj: str, method: str, args: list) -> tuple:
            notes = lane.chunks({WAIT: b"5", BULK: b""})
            data = marshal.dumps((obj, method, args, {}))
            raw = lane._HEADER.pack(b"PYRO", protocol.PROTOCOL_VERSION, protocol.MSG_INVOKE, 2, 0, 9, len(data),
                                    len(notes), bytes(16), 0, protocol._magic_number) + notes + data
            header = parse_header(raw[:40], 1 << 20, (protocol.MSG_INVOKE,))
            return header, raw, check_body(header, raw[40:])

        conn = Conn()
        assert lane.serve(daemon, conn, *message("t.dummy", "set_power", [4.0]))
        reply = conn.sent[-1]
        assert reply[:4] == b"PYRO" and marshal.loads(reply[40:]) is None and daemon.objectsById  # answered
        assert lane.serve(daemon, conn, *message("t.dummy", "__getattr__", ["power"]))
        assert marshal.loads(conn.sent[-1][40:]) == 4.0
        answered = len(conn.sent)
        assert not lane.serve(daemon, conn, *message("Pyro.Daemon", "get_metadata", ["t.dummy"]))
        assert not lane.serve(daemon, conn, *message("t.dummy", "no_such_member", []))
        assert len(conn.sent) == answered  # what the lane leaves to Pyro5 it does not answer
    finally:
        daemon.close()
