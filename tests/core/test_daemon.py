"""LabDaemon over real sockets: calls, validation, remote errors, numpy, threads, serialisation, stop."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time

import numpy as np
import pytest
from conftest import port_is_free, wait_for
from Pyro5.api import Proxy

from pyrolab_jupyter import Lab, start_daemon
from pyrolab_jupyter.core.daemon import LabDaemon
from pyrolab_jupyter.errors import ConfigError, InvalidArgument, RemoteError

pytestmark = pytest.mark.network

DUMMY = "labservices:Dummy"


@pytest.fixture
def dummy(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": DUMMY, "t.other": DUMMY}, nameserver.address)
    return lab.connect("t.dummy")


def test_methods_and_properties(dummy):
    dummy.set_power(3.5)
    assert dummy.power == 3.5
    dummy.power = 7
    assert dummy.power == 7.0
    dummy.mode = "pulsed"
    assert dummy.mode == "pulsed"
    assert dummy.choose("b") == "b"


def test_bad_argument_names_parameter_value_and_bound(dummy):
    with pytest.raises(InvalidArgument, match=r"mw=99 is above the maximum 50 \(mW\)") as info:
        dummy.set_power(99)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidArgument, match="not one of"):
        dummy.choose("z")
    with pytest.raises(InvalidArgument, match="power=-1"):
        dummy.power = -1
    with pytest.raises(InvalidArgument, match="missing"):
        dummy.set_power()
    assert dummy.power == 1.0, "a refused call must never reach the instrument"


def test_remote_exceptions_keep_type_message_and_traceback(dummy):
    with pytest.raises(KeyError, match="no such channel") as info:
        dummy.fail_builtin()
    assert "fail_builtin" in info.value.remote_traceback
    with pytest.raises(RemoteError, match="DeviceFault: interlock open") as info2:
        dummy.fail_custom()
    assert info2.value.remote_type == "labservices.DeviceFault"
    assert "interlock open" in info2.value.remote_traceback
    assert dummy.echo("still serving") == "still serving"


@pytest.mark.parametrize("value", [
    np.arange(24, dtype=np.int16).reshape(2, 3, 4),
    np.asfortranarray(np.random.default_rng(1).random((5, 3))),
    np.array([1 + 2j, 3 - 1j], dtype=np.complex64),
    np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
    np.zeros((0, 3), dtype=np.uint8),
    np.array(["ab", "c"]),
    np.arange(10)[::3],
])
def test_numpy_arrays_round_trip(dummy, value):
    back = dummy.echo(value)
    assert isinstance(back, np.ndarray)
    assert back.dtype == value.dtype and back.shape == value.shape
    np.testing.assert_array_equal(back, value)
    if value.ndim > 1 and value.flags.f_contiguous and not value.flags.c_contiguous:
        assert back.flags.f_contiguous
    assert dummy.dtype_of(value).split()[0] == value.dtype.str


@pytest.mark.parametrize("value", [np.float32(1.25), np.int8(-3), np.uint64(2**63), np.bool_(True),
                                   np.complex128(1j), np.datetime64("2026-01-01")])
def test_numpy_scalars_round_trip(dummy, value):
    back = dummy.echo(value)
    assert type(back) is type(value) and back == value


def test_nested_values_round_trip(dummy):
    value = {"trace": np.ones(3), "meta": [np.int32(1), ("a", 2)], "n": None}
    back = dummy.echo(value)
    np.testing.assert_array_equal(back["trace"], np.ones(3))
    assert back["meta"] == [1, ("a", 2)] and type(back["meta"][0]) is np.int32


def test_usable_from_many_threads(dummy):
    def work(i: int) -> float:
        dummy.power = i % 50
        return dummy.echo(i)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(200)))
    assert results == list(range(200))


def test_calls_to_one_service_are_serialised(dummy):
    threads = [threading.Thread(target=dummy.sleep, args=(0.2,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert dummy.overlap() == 1


def test_slow_call_does_not_block_another_service(lab, dummy):
    other = lab.connect("t.other")
    slow = threading.Thread(target=dummy.sleep, args=(5.0,))
    slow.start()
    time.sleep(0.2)
    start = time.monotonic()
    assert other.echo(1) == 1
    fast = time.monotonic() - start
    slow.join(10)
    assert fast < 4.0, f"t.other waited {fast:.2f} s behind t.dummy's 5 s call"


def test_plain_pyro5_proxy_still_works(dummy, nameserver):
    with Proxy(dummy._pyrolab_uri) as plain:
        plain._pyroTimeout = 5
        plain.set_power(4.0)
        assert plain.power == 4.0


def test_stop_closes_accepted_connections_and_unregisters(nameserver):
    from labservices import Dummy

    handle = start_daemon({"t.local": Dummy()}, nameserver=nameserver.address)
    lab = Lab(nameserver.address)
    remote = lab.connect("t.local", timeout=3)
    assert remote.echo(1) == 1
    host, port = handle.address.split(":")
    raw = socket.create_connection((host, int(port)), timeout=5)  # an accepted, idle connection
    handle.stop()
    raw.settimeout(5)
    assert raw.recv(1) == b"", "an accepted connection stayed open after stop()"
    raw.close()
    assert "t.local" not in lab.names()
    assert port_is_free(int(port))


# --- reachable addresses (several PCs; the namespace harness in tests/multihost runs them for real) ---


def test_advertise_sets_the_registered_address(lab, nameserver):
    from labservices import Dummy

    from pyrolab_jupyter.core.daemon import LabDaemon

    daemon = LabDaemon(nameserver=nameserver.address, advertise="127.0.0.1:7999")
    try:
        assert daemon.add("t.nat", Dummy()).endswith("@127.0.0.1:7999")
        assert daemon.address == "127.0.0.1:7999"
    finally:
        daemon.close()


def test_wildcard_advertises_the_interface_that_routes_to_the_nameserver(nameserver):
    from pyrolab_jupyter.core.daemon import _advertised
    from pyrolab_jupyter.core.naming import nameserver_uri

    # decided before anything binds (tests never bind a wildcard address): the nameserver is on this PC's
    # loopback, so that is the interface a daemon listening everywhere must register; port 0: the bound one
    assert _advertised("0.0.0.0", None, nameserver_uri(nameserver.address)) == ("127.0.0.1", 0)
    assert _advertised("", None, nameserver_uri(nameserver.address)) == ("127.0.0.1", 0)
    assert _advertised("0.0.0.0", "10.1.2.3:7000", nameserver_uri(nameserver.address)) == ("10.1.2.3", 7000)


def test_loopback_is_refused_for_a_nameserver_on_another_pc():
    from pyrolab_jupyter.errors import ConfigError

    # 198.51.100.1 (TEST-NET-2) stands for another PC; the refusal comes before any packet
    with pytest.raises(ConfigError, match=r"loopback address \(127\.0\.0\.1\).*198\.51\.100\.1.*advertise"):
        start_daemon({"t.lo": DUMMY}, nameserver="198.51.100.1:9090", host="127.0.0.1")


def test_registered_with_two_nameservers_while_one_is_killed_and_restarted(nameserver_factory, daemon_factory):
    first, second = nameserver_factory(), nameserver_factory()
    daemon_factory({"t.both": DUMMY}, [first.address, second.address], heartbeat=0.3)
    for ns in (first, second):
        wait_for(lambda ns=ns: "t.both" in Lab(ns.address).names())
    second.kill()  # kill -9: it forgets everything (memory storage)
    both = Lab([second.address, first.address], timeout=2)
    assert both.connect("t.both").echo("still") == "still"  # one nameserver answering is enough
    time.sleep(0.9)  # three heartbeats against a dead nameserver: the daemon keeps serving and trying
    second.start()
    wait_for(lambda: "t.both" in Lab(second.address).names(), timeout=10)  # repopulated on a heartbeat
    assert Lab(first.address).names() == ["t.both"]
    rows = Lab([first.address, second.address]).services()
    assert [(r["name"], r["status"], r["sources"]) for r in rows] == [
        ("t.both", "online", [first.address, second.address])]


def test_nameservers_are_checked_like_one():
    with pytest.raises(ConfigError, match="nameserver address"):
        LabDaemon(nameserver=["127.0.0.1:9090", "no port here:x"])
