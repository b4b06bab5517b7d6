"""Faults and abuse across the parts, in real processes: a hung method, a daemon killed under a lock,
fuzzed calls, a stock Pyro5 client, a silent nameserver."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawwire import status

from pyrolab_jupyter import Lab
from pyrolab_jupyter.core.client import RemoteService
from pyrolab_jupyter.core.proxies import new_proxy
from pyrolab_jupyter.errors import (
    CallTimeout,
    InvalidArgument,
    LockLost,
    PyroLabError,
    ServiceBusy,
    ServiceLocked,
)

pytestmark = pytest.mark.network

TWO = {"t.dummy": "labservices:Dummy", "t.other": "labservices:Dummy"}


def _outcome(call: Any) -> str:
    try:
        call()
        return "ok"
    except Exception as err:  # noqa: BLE001 - the test counts what came back
        return type(err).__name__


def test_a_hung_method_hurts_only_its_own_service(nameserver: Any, lab: Lab, daemon_factory: Any) -> None:
    handle = daemon_factory(TWO, nameserver.address)
    hung = lab.connect("t.dummy", timeout=3.0)
    threading.Thread(target=_outcome, args=(lambda: hung.sleep(20),), daemon=True).start()
    wait_for(lambda: "sleep()" in _busy_message(lab), timeout=10)
    outcomes: Counter[str] = Counter()

    def retry() -> None:
        for _ in range(3):
            outcomes[_outcome(lambda: lab.connect("t.dummy", timeout=1.5).set_power(1.0))] += 1

    retries = [threading.Thread(target=retry, daemon=True) for _ in range(20)]
    for thread in retries:
        thread.start()
    other = lab.connect("t.other", timeout=10.0)
    statuses = set()
    for i in range(20):  # the other service keeps its capacity, the listing stays settled
        other.set_power(i % 50)
        statuses |= {row["status"] for row in lab.services()}
        time.sleep(0.1)
    for thread in retries:
        thread.join(60)
    assert other.power == 19
    assert statuses == {"online"}, f"the listing flipped: {statuses}"
    assert set(outcomes) <= {"ServiceBusy", "CallTimeout"} and outcomes["ServiceBusy"] > 0, outcomes
    assert status(handle.pid, "Threads") < 300


def _busy_message(lab: Lab) -> str:
    try:
        lab.connect("t.dummy", timeout=2.0).set_power(1.0)
    except ServiceBusy as err:
        return str(err)
    except CallTimeout:
        return ""
    return ""


def _holder(address: str) -> subprocess.Popen[str]:
    """Another process that tries to lock t.dummy and reports what happened."""
    code = ("import sys\nfrom pyrolab_jupyter import Lab\n"
            f"r = Lab({address!r}, timeout=10).connect('t.dummy')\n"
            "try:\n    r.lock(lease=5); print('locked')\nexcept Exception as e:\n    print(type(e).__name__)\n")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_a_lock_survives_kill_9_and_restart_with_its_state_file(nameserver: Any, lab: Lab, daemon_factory: Any,
                                                                 tmp_path: Path) -> None:
    port, state = free_port(), str(tmp_path / "bench.locks.json")
    first = daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address, port=port, state_file=state)
    mine = lab.connect("t.dummy")
    mine.lock(lease=120)
    os.kill(first.pid, signal.SIGKILL)
    first.process.wait(10)
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address, port=port, state_file=state)
    info = mine.lock_info()
    assert info is not None and info["mine"], "the holder keeps its lock across the restart"
    mine.set_power(4.0)
    other = _holder(nameserver.address)
    assert other.communicate(timeout=60)[0].strip() == "ServiceLocked"
    mine.unlock()
    assert mine.lock_info() is None


def test_a_lock_lost_in_a_restart_is_reported_never_silent(nameserver: Any, lab: Lab, daemon_factory: Any) -> None:
    port = free_port()
    first = daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address, port=port)
    mine = lab.connect("t.dummy")
    mine.lock(lease=120)
    os.kill(first.pid, signal.SIGKILL)
    first.process.wait(10)
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address, port=port)  # no state file
    with pytest.raises(LockLost, match="t.dummy"):
        mine.set_power(4.0)
    mine.set_power(4.0)  # told once; the caller now knows it holds nothing
    mine.lock(lease=5)
    mine.unlock()


def test_lock_changes_do_not_wait_for_a_silent_nameserver(daemon_factory: Any) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # accepts TCP, never answers
    try:
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        handle = daemon_factory({"t.dummy": "labservices:Dummy"}, address, register_timeout=0.1)
        # the daemon's nameserver calls time out after 3 s; this client gives up after 2.5 s
        remote = RemoteService(Lab(address), "t.dummy", handle.uris["t.dummy"], 2.5)
        for _ in range(3):
            remote.lock(lease=30)
            remote.unlock()
    finally:
        silent.close()


_STOCK = """
import sys
from Pyro5.api import Proxy
with Proxy(sys.argv[1]) as proxy:
    proxy._pyroSerializer = sys.argv[2]
    proxy._pyroTimeout = 10
    try:
        proxy.set_power(99)
    except Exception as err:
        print(f"{type(err).__module__}.{type(err).__name__}|{err}|{getattr(err, 'pyrolab_type', '')}")
"""


@pytest.mark.parametrize("serializer", ["serpent", "json"])
def test_a_stock_pyro5_client_reads_our_errors(serializer: str, daemon_factory: Any) -> None:
    handle = daemon_factory({"t.dummy": "labservices:Dummy"}, None)
    assert "pyrolab_jupyter" not in _STOCK
    out = subprocess.run([sys.executable, "-c", _STOCK, handle.uris["t.dummy"], serializer],
                         capture_output=True, text=True, timeout=60).stdout.strip()
    remote = RemoteService(Lab("127.0.0.1:1"), "t.dummy", handle.uris["t.dummy"], 10.0)
    with pytest.raises(InvalidArgument) as ours:
        remote.set_power(99)
    assert out == f"Pyro5.errors.PyroError|{ours.value}|InvalidArgument"


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.binary(max_size=20)
    | st.sampled_from([{"__pyrolab__": "ndarray"}, {"__pyrolab__": "tuple"}, {"__pyrolab__": 5},
                       {"__pyrolab__": "scalar", "dtype": "<f8", "data": b"\0"}, "x" * 3000]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)
_MEMBERS = st.sampled_from(["set_power", "echo", "choose", "dtype_of", "power", "nope", "_private", "__dict__",
                            "describe", "pyrolab_lock", "pyrolab_unlock", "pyrolab_lock_info", "pyrolab_read"])


def test_fuzzed_calls_get_only_documented_errors(daemon_factory: Any) -> None:
    handle = daemon_factory({"t.dummy": "labservices:Dummy"}, None)
    uri = handle.uris["t.dummy"]
    remote = RemoteService(Lab("127.0.0.1:1"), "t.dummy", uri, 10.0)
    raw = new_proxy(uri, 10.0)
    seen: Counter[str] = Counter()
    keys = st.text(max_size=8) | st.integers() | st.none()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_MEMBERS, st.lists(_VALUES, max_size=3), st.dictionaries(keys, _VALUES, max_size=2), st.booleans())
    def call(member: str, args: list[Any], kwargs: dict[Any, Any], through_client: bool) -> None:
        try:
            if through_client:
                kind = "control" if member.startswith(("pyrolab", "describe")) else "call"
                remote._pyrolab_call(kind, member, tuple(args), {str(k): v for k, v in kwargs.items()})
            else:
                raw._pyroInvoke(member, args, kwargs)
            seen["ok"] += 1
        except PyroLabError as err:
            assert len(str(err)) < 2000, f"{type(err).__name__} message of {len(str(err))} characters"
            seen[type(err).__name__] += 1

    try:
        call()
    finally:
        raw._pyroRelease()
    assert seen["InvalidArgument"] > 0 and seen["ok"] > 0, seen
    assert remote.power is not None and status(handle.pid, "Threads") < 300  # alive and bounded


def test_long_values_are_cut_in_error_messages(daemon_factory: Any) -> None:
    handle = daemon_factory({"t.dummy": "labservices:Dummy"}, None)
    remote = RemoteService(Lab("127.0.0.1:1"), "t.dummy", handle.uris["t.dummy"], 10.0)
    with pytest.raises(InvalidArgument) as err:
        remote.choose("z" * 10_000_000)
    assert len(str(err.value)) < 1000 and "choose" in str(err.value)
    with pytest.raises((InvalidArgument, ServiceLocked)):
        remote._pyrolab_call("control", "pyrolab_lock", ("abc",), {})
