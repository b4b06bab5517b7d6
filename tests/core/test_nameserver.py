"""The watching nameserver: offline detection, keep/remove, restart repopulation, plain Pyro5 clients, scale."""

from __future__ import annotations

import time

import pytest
from conftest import free_port, wait_for
from Pyro5.api import Proxy, locate_ns

from pyrolab_jupyter import Lab, start_nameserver
from pyrolab_jupyter.errors import NameserverUnreachable

pytestmark = pytest.mark.network


def _row(lab: Lab, name: str) -> dict | None:
    return lab.entry(name)


def test_registered_service_is_online_with_metadata(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": {"class": "labservices:Dummy", "description": "bench 1 dummy"}},
                   nameserver.address)
    row = _row(lab, "t.dummy")
    assert row["status"] == "online"
    assert row["class"] == "labservices:Dummy"
    assert row["description"] == "bench 1 dummy"
    assert row["locked_by"] is None
    assert row["uri"].startswith("PYRO:t.dummy@127.0.0.1:")
    assert time.time() - row["last_seen"] < 5
    assert set(row) == {"name", "uri", "status", "last_seen", "class", "description", "locked_by"}


@pytest.mark.parametrize("policy", ["keep", "remove"])
def test_killed_daemon_goes_offline_within_two_intervals(nameserver_factory, daemon_factory, policy):
    ns = nameserver_factory(check_interval=0.5, on_offline=policy)
    lab = Lab(ns.address)
    handle = daemon_factory({"t.victim": "labservices:Dummy"}, ns.address)
    survivor = daemon_factory({"t.survivor": "labservices:Dummy"}, ns.address)
    wait_for(lambda: _row(lab, "t.victim"))
    before = _row(lab, "t.victim")
    handle.process.kill()
    handle.process.wait(10)
    killed = time.monotonic()
    # the bound is two intervals; the deadline adds generous slack for a loaded machine
    if policy == "keep":
        wait_for(lambda: _row(lab, "t.victim")["status"] == "offline", timeout=2 * 0.5 + 3, interval=0.02)
        row = _row(lab, "t.victim")
        assert row["uri"] == before["uri"] and row["last_seen"] >= before["last_seen"]
    else:
        wait_for(lambda: _row(lab, "t.victim") is None, timeout=2 * 0.5 + 3, interval=0.02)
    print(f"offline detection ({policy}): {time.monotonic() - killed:.2f} s with check_interval=0.5")
    assert _row(lab, "t.survivor")["status"] == "online"
    assert survivor.alive


def test_restarted_nameserver_is_repopulated_within_a_heartbeat(nameserver_factory, daemon_factory):
    ns = nameserver_factory(check_interval=0.5)
    daemon_factory({"t.a": "labservices:Dummy", "t.b": "labservices:Dummy"}, ns.address, heartbeat=1.0)
    # memory storage: only the daemons' heartbeat can bring the entries back
    lab = Lab(ns.address, timeout=2)
    assert {"t.a", "t.b"} <= set(lab.names())
    ns.kill()
    with pytest.raises(NameserverUnreachable, match=ns.address):
        lab.services()
    ns.start()
    restarted = time.monotonic()
    wait_for(lambda: {"t.a", "t.b"} <= set(lab.names()), timeout=1.0 + 3, interval=0.05)
    print(f"repopulated {time.monotonic() - restarted:.2f} s after the nameserver restart (heartbeat 1.0 s)")
    assert lab.connect("t.a").echo(5) == 5


def test_plain_pyro5_clients_work(nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    with locate_ns(host="127.0.0.1", port=nameserver.port) as ns:
        uri = ns.lookup("t.dummy")
        listing = ns.list(return_metadata=True)
        assert "pyrolab.class=labservices:Dummy" in listing["t.dummy"][1]
    with Proxy(uri) as dummy:
        dummy._pyroTimeout = 5
        assert dummy.echo("plain") == "plain"


def test_unreachable_nameserver_message():
    port = free_port()
    with pytest.raises(NameserverUnreachable, match=f"127.0.0.1:{port}.*pyrolab nameserver"):
        Lab(f"127.0.0.1:{port}", timeout=2).services()


def test_many_services_do_not_make_the_monitor_fall_behind():
    """200 entries on 40 daemon addresses, half of them dead: one round stays well inside the interval."""
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=60)  # rounds driven by hand below
    try:
        live = start_nameserver(host="127.0.0.1", port=0, check_interval=60)  # any Pyro daemon answers ping
        try:
            dead_ports = [free_port() for _ in range(20)]
            for i in range(200):
                location = live.address if i % 2 else f"127.0.0.1:{dead_ports[i % 20]}"
                ns.nameserver.register(f"svc.{i}", f"PYRO:svc.{i}@{location}")
            start = time.monotonic()
            ns.monitor.check_once()
            took = time.monotonic() - start
            print(f"one health round over 200 services: {took * 1000:.0f} ms")
            rows = {r["name"]: r["status"] for r in Lab(ns.address).services()}
            assert sum(s == "offline" for s in rows.values()) == 100
            assert sum(s == "online" for s in rows.values()) == 100
            assert took < 5.0
        finally:
            live.stop()
    finally:
        ns.stop()


def test_sql_storage_survives_restart(tmp_path, nameserver_factory, daemon_factory):
    ns = nameserver_factory(check_interval=0.5, storage=f"sql:{tmp_path / 'ns.db'}")
    daemon_factory({"t.persist": "labservices:Dummy"}, ns.address, heartbeat=30)
    ns.stop()
    ns.start()
    assert "t.persist" in Lab(ns.address).names()  # back before any heartbeat


def test_lab_answers(nameserver):
    assert Lab(nameserver.address).answers()
    assert not Lab(f"127.0.0.1:{free_port()}", timeout=1).answers()


def test_hijacking_a_live_name_is_refused_and_logged(daemon_factory, caplog):
    caplog.set_level("INFO", logger="pyrolab_jupyter.core.nameserver")
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=60)
    try:
        victim = daemon_factory({"t.victim": "labservices:Dummy"}, ns.address, heartbeat=60)
        lab = Lab(ns.address)
        real = lab.lookup("t.victim")
        evil = f"PYRO:t.victim@127.0.0.1:{free_port()}"
        with Proxy(ns.uri) as stock:  # what any process on the network can do with plain Pyro5
            for _ in range(5):
                with pytest.raises(Exception, match="live daemon"):
                    stock.register("t.victim", evil, safe=False)
        assert lab.lookup("t.victim") == real
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 5 and all("127.0.0.1" in m and "t.victim" in m for m in refusals)

        victim.process.kill()  # the owner no longer answers: a replacement (a restarted daemon) is taken at once
        victim.process.wait(10)
        with Proxy(ns.uri) as stock:
            stock.register("t.victim", evil, safe=False)
            assert str(stock.lookup("t.victim")) == evil
            stock.remove("t.victim")
        messages = [r.getMessage() for r in caplog.records]
        assert any("replaced" in m and "t.victim" in m and "127.0.0.1" in m for m in messages)
        assert any("removed" in m and "t.victim" in m and "127.0.0.1" in m for m in messages)
    finally:
        ns.stop()


def test_a_restarted_persistent_nameserver_says_unknown_until_it_checked(tmp_path, nameserver_factory,
                                                                         daemon_factory):
    """kill -9, restart on the same sqlite file, list at once: remembered entries are unknown, never online
    unchecked; the first health round then tells the live one from the dead one."""
    ns = nameserver_factory(check_interval=3.0, storage=f"sql:{tmp_path / 'ns.db'}")
    daemon_factory({"t.alive": "labservices:Dummy"}, ns.address, heartbeat=600)  # registers once, at start
    gone = daemon_factory({"t.gone": "labservices:Dummy"}, ns.address, heartbeat=600)
    rows = {r["name"]: r["status"] for r in Lab(ns.address).services()}
    assert rows == {"t.alive": "online", "t.gone": "online"}
    ns.kill()
    gone.process.kill()  # dies without unregistering while the nameserver is down
    gone.process.wait(10)
    ns.start()
    first = {r["name"]: r for r in Lab(ns.address).services()}
    assert {name: row["status"] for name, row in first.items()} == {"t.alive": "unknown", "t.gone": "unknown"}
    assert all(row["last_seen"] is None for row in first.values())
    seen: list[dict[str, str]] = []

    def checked() -> bool:
        seen.append({r["name"]: r["status"] for r in Lab(ns.address).services()})
        return seen[-1] == {"t.alive": "online", "t.gone": "offline"}

    wait_for(checked, timeout=30, interval=0.2)
    # on the way, t.gone was never shown online: unknown until the round found it dead
    assert all(rows.get("t.gone") in ("unknown", "offline") for rows in seen)
