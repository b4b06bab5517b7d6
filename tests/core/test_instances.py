"""Instance modes seen from two client processes: single shares, session separates and frees, percall is fresh."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import end_child, wait_for

from pyrolab_jupyter import Lab, start_daemon
from pyrolab_jupyter.core.errors import ConfigError, ServiceLocked
from pyrolab_jupyter.core.instances import instance_mode_of

_CLIENT = """
import json, sys
from pyrolab_jupyter import Lab
calc = Lab(sys.argv[1]).connect("calc")
counts = [calc.bump() for _ in range(int(sys.argv[2]))]
print(json.dumps({"counts": counts, "who": calc.who()}), flush=True)
sys.stdin.read()  # stays connected until the test closes its stdin
"""


class _Client:
    """Another client process: bumps ``calc`` and stays connected until ``leave()``."""

    def __init__(self, nameserver: str, bumps: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _CLIENT, nameserver, str(bumps)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the client process failed before answering"
        self.said = json.loads(line)

    def leave(self) -> None:
        end_child(self.proc, grace=15)


def _journal(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _spec(journal: Path, **extra: object) -> dict[str, object]:
    return {"class": "modeservices:Counter", "args": {"journal": str(journal)}, **extra}


def test_single_is_shared_by_two_clients(nameserver, daemon_factory: Callable[..., object], tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    daemon_factory({"calc": _spec(journal)}, nameserver.address)
    calc = Lab(nameserver.address).connect("calc")
    assert calc.bump() == 1
    other = _Client(nameserver.address, 1)
    try:
        assert other.said["counts"] == [2]  # the same object counted both clients' calls
        assert other.said["who"] == calc.who()
        assert "instance_mode" not in calc.describe()
    finally:
        other.leave()
    assert [line.split()[0] for line in _journal(journal)] == ["made"]
    calc.disconnect()


def test_session_instances_are_per_client_and_closed_when_it_leaves(
        nameserver, daemon_factory: Callable[..., object], tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    daemon_factory({"calc": _spec(journal, instance_mode="session")}, nameserver.address)
    calc = Lab(nameserver.address).connect("calc")
    assert calc.describe()["instance_mode"] == "session"
    assert [calc.bump(), calc.bump()] == [1, 2]
    mine = calc.who()
    other = _Client(nameserver.address, 3)
    try:
        assert other.said["counts"] == [1, 2, 3]  # its own instance, not ours
        theirs = other.said["who"]
        assert theirs != mine
        assert calc.bump() == 3 and calc.total == 3
        # locks apply to the service name in every mode: our lock stops the other client's calls
        with calc.lock():
            locked_out = subprocess.run(
                [sys.executable, "-c", "import sys; from pyrolab_jupyter import Lab\n"
                 "try:\n    Lab(sys.argv[1]).connect('calc').bump()\nexcept Exception as e:\n"
                 "    print(type(e).__name__)", nameserver.address],
                capture_output=True, text=True, timeout=60)
            assert locked_out.stdout.strip() == ServiceLocked.__name__
    finally:
        other.leave()
    wait_for(lambda: f"closed {theirs}" in _journal(journal))  # freed when its client disconnected
    assert f"closed {mine}" not in _journal(journal)
    calc.disconnect()
    wait_for(lambda: f"closed {mine}" in _journal(journal))
    made = [line for line in _journal(journal) if line.startswith("made")]
    assert f"made {mine}" in made and f"made {theirs}" in made


def test_session_from_the_class_attribute(nameserver, daemon_factory: Callable[..., object], tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    daemon_factory({"calc": {"class": "modeservices:SessionCounter", "args": {"journal": str(journal)}}},
                   nameserver.address)
    calc = Lab(nameserver.address).connect("calc")
    assert calc.describe()["instance_mode"] == "session"
    other = _Client(nameserver.address, 1)
    try:
        assert other.said["counts"] == [1]
        assert calc.bump() == 1
        assert other.said["who"] != calc.who()
    finally:
        other.leave()
    calc.disconnect()


def test_percall_makes_and_closes_one_instance_per_call(
        nameserver, daemon_factory: Callable[..., object], tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    daemon_factory({"calc": _spec(journal, instance_mode="percall")}, nameserver.address)
    before = len(_journal(journal))  # the template the description comes from
    calc = Lab(nameserver.address).connect("calc")
    assert calc.describe()["instance_mode"] == "percall"
    assert [calc.bump(), calc.bump(), calc.bump()] == [1, 1, 1]
    assert calc.who() != calc.who()
    other = _Client(nameserver.address, 2)
    try:
        assert other.said["counts"] == [1, 1]
    finally:
        other.leave()
    lines = _journal(journal)[before:]
    made = [line.split()[1] for line in lines if line.startswith("made")]
    closed = [line.split()[1] for line in lines if line.startswith("closed")]
    assert len(made) == 3 + 2 + 2 + 1  # bumps, whos, the other client's bumps and its who
    assert sorted(made) == sorted(closed)  # each closed after its call
    calc.disconnect()


def test_session_instances_are_closed_when_the_daemon_stops(nameserver, tmp_path: Path) -> None:
    from modeservices import SessionCounter

    journal = tmp_path / "journal"
    handle = start_daemon({"calc": SessionCounter}, nameserver=nameserver.address)
    try:
        calc = Lab(nameserver.address).connect("calc")
        assert calc.bump() == 1
        # a class passed directly: its instances are made without arguments, so none writes the journal
        assert handle.daemon is not None and handle.daemon._instances["calc"].sessions() == 1
    finally:
        handle.stop()
    assert handle.daemon._instances["calc"].sessions() == 0
    assert not journal.exists()


def test_bad_modes_are_refused_with_the_choices() -> None:
    from modeservices import Counter, SessionCounter

    with pytest.raises(ConfigError, match="single, session, percall"):
        instance_mode_of(Counter, "per-user", where="calc")
    assert instance_mode_of(SessionCounter) == "session"
    assert instance_mode_of(SessionCounter, "single") == "single"
    with pytest.raises(ConfigError, match="give the class"):
        start_daemon({"calc": SessionCounter()})  # one object cannot be one per client


def test_a_session_keeps_its_idle_connection_and_a_plain_one_is_closed() -> None:
    import marshal
    import socket

    from modeservices import SessionCounter
    from Pyro5 import protocol
    from rawwire import MARSHAL, closed_by_peer, frame

    from pyrolab_jupyter.core.client import RemoteService
    from pyrolab_jupyter.core.daemon import LabDaemon
    from pyrolab_jupyter.core.limits import Limits

    daemon = LabDaemon(limits=Limits(idle_timeout=1.0))
    try:
        uri = daemon.add("calc", SessionCounter())
        daemon.start()
        calc = RemoteService(Lab("127.0.0.1:1"), "calc", uri, 10.0)
        assert calc.bump() == 1
        other = socket.create_connection(("127.0.0.1", int(daemon.address.rsplit(":", 1)[1])))
        hello = marshal.dumps({"handshake": "hello", "object": "Pyro.Daemon"})
        other.sendall(frame(protocol.MSG_CONNECT, MARSHAL, 0, hello))  # idle from now on, like calc's
        assert closed_by_peer(other, 20.0), "an idle connection should be closed after idle_timeout"
        other.close()
        assert daemon._instances["calc"].sessions() == 1
        assert calc.bump() == 2, "the session's idle connection must stay open, and its instance with it"
        calc.disconnect()
        wait_for(lambda: daemon._instances["calc"].sessions() == 0, timeout=20)
    finally:
        daemon.stop()
