"""Leased locks: exclusion between client processes, lease expiry, release when the holder dies."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from conftest import wait_for

from pyrolab_jupyter.core.errors import ServiceLocked
from pyrolab_jupyter.core.locks import ClientInfo, LockTable

ALICE = ClientInfo("a", "alice@pc (pid 1)")
BOB = ClientInfo("b", "bob@pc (pid 2)")


def test_lock_table_exclusion_and_renewal():
    table = LockTable()
    table.acquire("s", ALICE, 10)
    table.acquire("s", ALICE, 20)  # the holder renews
    with pytest.raises(ServiceLocked, match="alice@pc"):
        table.acquire("s", BOB, 10)
    with pytest.raises(ServiceLocked):
        table.check("s", BOB)
    table.check("s", ALICE)
    with pytest.raises(ServiceLocked, match="only the holder"):
        table.release("s", BOB)
    assert table.release("s", ALICE)
    table.check("s", BOB)


def test_lock_table_expiry_and_client_gone():
    table = LockTable()
    table.acquire("s", ALICE, 0.05)
    table.acquire("t", ALICE, None)
    time.sleep(0.1)
    assert table.expire() == ["s"]
    assert table.release_client("a") == ["t"]
    assert table.holder("t") is None
    with pytest.raises(ValueError):
        table.acquire("s", ALICE, 0)


_OTHER_CLIENT = textwrap.dedent("""
    import sys
    from pyrolab_jupyter import Lab
    from pyrolab_jupyter.errors import ServiceLocked
    remote = Lab(sys.argv[1]).connect("t.dummy")
    action = sys.argv[2]
    if action == "hold":
        remote.lock(lease=60)
        print("locked", flush=True)
        sys.stdin.read()
    else:
        print("read", remote.power, remote.echo("ro"), flush=True)
        try:
            remote.set_power(2)
            print("called", flush=True)
        except ServiceLocked as err:
            print("refused:", err, flush=True)
""")


def _client(address: str, action: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _OTHER_CLIENT, address, action],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@contextlib.contextmanager
def _holder(address: str) -> Iterator[subprocess.Popen[str]]:
    """Another client process that holds t.dummy's lock until killed."""
    holder = _client(address, "hold")
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdin.close()
        holder.stdout.close()


@pytest.mark.network
def test_lock_excludes_other_process_until_released(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    mine = lab.connect("t.dummy")
    with mine.lock(lease=30) as handle:
        assert "pid" in handle.holder
        out, _ = _client(nameserver.address, "try").communicate(timeout=30)
        assert "read 1.0 ro" in out, "reads and readonly methods stay open under a lock"
        assert "refused:" in out and handle.holder in out
        wait_for(lambda: lab.entry("t.dummy")["locked_by"] == handle.holder, timeout=5)  # registered off the call
        mine.set_power(5)  # any thread of the holder process may call
    wait_for(lambda: lab.entry("t.dummy")["locked_by"] is None, timeout=5)
    out, _ = _client(nameserver.address, "try").communicate(timeout=30)
    assert "called" in out


@pytest.mark.network
def test_lease_expires(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    mine = lab.connect("t.dummy")
    mine.lock(lease=0.5)
    assert mine.lock_info()["mine"]
    wait_for(lambda: mine.lock_info() is None, timeout=5)
    wait_for(lambda: lab.entry("t.dummy")["locked_by"] is None, timeout=5)


@pytest.mark.network
def test_lock_released_when_holder_process_is_killed(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    with _holder(nameserver.address) as holder:
        mine = lab.connect("t.dummy")
        with pytest.raises(ServiceLocked, match=f"pid {holder.pid}"):
            mine.set_power(3)
        holder.kill()
        holder.wait(10)
        wait_for(lambda: mine.lock_info() is None, timeout=10)
        mine.set_power(3)
        assert mine.power == 3


@pytest.mark.network
def test_force_unlock(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    with _holder(nameserver.address) as holder:
        mine = lab.connect("t.dummy")
        assert f"pid {holder.pid}" in mine.force_unlock()
        mine.set_power(4)
