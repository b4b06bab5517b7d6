"""The ``pyrolab`` command: help, bad arguments, check, ls, and nameserver/daemon as real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, port_is_free, wait_for

from pyrolab_jupyter import Lab, cli

GOOD = """\
nameserver: {host: 127.0.0.1, port: 19090, check_interval: 0.5}
daemons:
  bench1:
    heartbeat: 0.5
    services:
      lab.laser: {class: "pyrolab_jupyter.instruments.sim:Laser", description: Tunable laser}
"""

BROKEN = {
    "unknown key": (GOOD.replace("heartbeat:", "heartbeet:"), ["heartbeet", "heartbeat"]),
    "wrong type": (GOOD.replace("port: 19090", "port: lots"), ["nameserver.port", "integer"]),
    "missing module": (GOOD.replace("pyrolab_jupyter.instruments.sim:Laser", "nosuch_pkg.mod:Laser"),
                       ["nosuch_pkg", "cannot import"]),
    "bad YAML": (GOOD + "  oops: [unclosed\n", ["line"]),
}


def write(tmp_path: Path, text: str, name: str = "lab.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("command", [[], ["nameserver"], ["daemon"], ["up"], ["ls"], ["check"]])
def test_help_has_examples(command, capsys):
    assert cli.main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: pyrolab" in out
    assert "examples:" in out


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["daemon", "pyrolab_jupyter.instruments.sim:Laser"],
                                  ["nameserver", "--on-offline", "forget"], ["nameserver", "--port", "x"]])
def test_bad_arguments_exit_2_with_usage(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


def test_check_ok(tmp_path, capsys):
    assert cli.main(["check", write(tmp_path, GOOD)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "1 daemon" in out and "1 service" in out


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("command", ["check", "up"])
def test_broken_lab_file_is_explained(case, command, tmp_path, capsys):
    text, words = BROKEN[case]
    path = write(tmp_path, text)
    assert cli.main([command, path]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert path in err or "lab.yaml" in err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "logs").exists()  # nothing started


def test_check_missing_file(tmp_path, capsys):
    assert cli.main(["check", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml" in capsys.readouterr().err


def test_daemon_bad_args_json(capsys):
    assert cli.main(["daemon", "pyrolab_jupyter.instruments.sim:Laser", "--name", "x", "--args", "{nope"]) == 2
    assert "--args is not JSON" in capsys.readouterr().err


def test_daemon_missing_class_is_explained(capsys):
    assert cli.main(["daemon", "nosuch_pkg.mod:Thing", "--name", "x", "--nameserver", "127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert "nosuch_pkg" in err and "Traceback" not in err


@pytest.mark.network
def test_ls_unreachable_names_the_address(capsys):
    address = f"127.0.0.1:{free_port()}"
    assert cli.main(["ls", "--nameserver", address, "--timeout", "2"]) == 1
    captured = capsys.readouterr()
    assert address in captured.err and "Traceback" not in captured.err
    assert cli.main(["ls", "--nameserver", address, "--json", "--timeout", "2"]) == 1


def test_demo_forwards_its_arguments(monkeypatch):
    seen = []
    fake = type(sys)("pyrolab_jupyter.demo")
    fake.main = lambda argv=None: seen.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyrolab_jupyter.demo", fake)
    assert cli.main(["demo", "--no-browser", "--port", "8899"]) == 0
    assert seen == [["--no-browser", "--port", "8899"]]


def pyrolab(*args: str) -> list[str]:
    return [sys.executable, "-m", "pyrolab_jupyter.cli", *args]


def stop(proc: subprocess.Popen[str], timeout: float = 10.0) -> int:
    """SIGINT, then kill if it does not go; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


@pytest.mark.network
def test_nameserver_and_daemon_commands(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    # the daemon first: it must wait for its nameserver, not die
    daemon = subprocess.Popen(pyrolab("daemon", "pyrolab_jupyter.instruments.sim:Stage", "--name", "t.stage",
                                      "--nameserver", address, "--heartbeat", "0.5", "--description", "A stage"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ns = None
    try:
        time.sleep(0.5)
        ns = subprocess.Popen(pyrolab("nameserver", "--port", str(port), "--check-interval", "0.5"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def listed() -> dict | None:
            out = subprocess.run(pyrolab("ls", "--nameserver", address, "--json"), capture_output=True,
                                 text=True, timeout=30)
            payload = json.loads(out.stdout) if out.returncode == 0 else {}
            rows = [r for r in payload.get("services", []) if r["status"] == "online"]
            return payload if rows else None

        payload = wait_for(listed, timeout=30, interval=0.2)
        assert payload["nameserver"] == address
        (row,) = payload["services"]
        assert set(row) == {"name", "uri", "status", "last_seen", "class", "description", "locked_by"}
        assert row["name"] == "t.stage" and row["description"] == "A stage"
        assert row["class"] == "pyrolab_jupyter.instruments.sim:Stage"

        table = subprocess.run(pyrolab("ls", "--nameserver", address), capture_output=True, text=True, timeout=30)
        assert table.returncode == 0
        head, line = table.stdout.splitlines()
        assert head.split()[:3] == ["NAME", "STATUS", "LAST"]
        assert "t.stage" in line and "online" in line and row["uri"].rpartition("@")[2] in line

        daemon_port = int(row["uri"].rpartition(":")[2])
        assert stop(daemon) == 0
        assert stop(ns) == 0
        assert port_is_free(port) and port_is_free(daemon_port)
    finally:
        stop(daemon)
        if ns is not None:
            stop(ns)
        for proc in (daemon, ns):
            if proc is not None and proc.stdout is not None:
                proc.stdout.close()


@pytest.mark.network
def test_nameserver_port_taken_is_explained():
    port = free_port()
    first = subprocess.Popen(pyrolab("nameserver", "--port", str(port)), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        assert first.stdout is not None
        assert "nameserver at" in first.stdout.readline()
        second = subprocess.run(pyrolab("nameserver", "--port", str(port)), capture_output=True, text=True,
                                timeout=30)
        assert second.returncode == 1
        assert str(port) in second.stderr and "Traceback" not in second.stderr
    finally:
        stop(first)
        if first.stdout is not None:
            first.stdout.close()


@pytest.mark.network
def test_daemon_command_serves_a_qcodes_driver_on_pyvisa_sim(nameserver):
    pytest.importorskip("qcodes")
    args = json.dumps({"name": "gs200", "address": "GPIB::1::INSTR",
                       "pyvisa_sim_file": "qcodes.instrument.sims:Yokogawa_GS200.yaml"})
    daemon = subprocess.Popen(pyrolab("daemon", "qcodes.instrument_drivers.yokogawa:YokogawaGS200", "--name",
                                      "bench.gs200", "--nameserver", nameserver.address, "--adapter", "qcodes",
                                      "--args", args),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lab = Lab(nameserver.address, timeout=20)
        wait_for(lambda: lab.entry("bench.gs200"), timeout=60, interval=0.2)
        gs200 = lab.connect("bench.gs200")
        assert gs200.describe()["properties"]["voltage_limit"]["schema"]["maximum"] == 30
        gs200.disconnect()
        assert stop(daemon) == 0
    finally:
        stop(daemon)
        if daemon.stdout is not None:
            daemon.stdout.close()


def test_daemon_command_names_an_unknown_adapter(capsys):
    assert cli.main(["daemon", "fractions:Fraction", "--name", "x", "--adapter", "nosuch",
                     "--nameserver", "127.0.0.1:1"]) == 1
    assert "no adapter named 'nosuch'" in capsys.readouterr().err


@pytest.mark.network
def test_ls_and_daemon_take_several_nameservers(nameserver, nameserver_factory, capsys):
    other = nameserver_factory()
    dead = f"127.0.0.1:{free_port()}"
    daemon = subprocess.Popen(pyrolab("daemon", "labservices:Dummy", "--name", "t.dummy", "--nameserver",
                                      f"{nameserver.address},{other.address}"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for address in (nameserver.address, other.address):  # registered with each
            wait_for(lambda a=address: Lab(a, timeout=5).entry("t.dummy"), timeout=60, interval=0.2)
        assert cli.main(["ls", "--nameserver", f"{dead},{nameserver.address}", "--json", "--timeout", "5"]) == 0
        listed = json.loads(capsys.readouterr().out)  # the dead one is skipped, the live one answers
        assert listed["nameserver"] == f"{dead}, {nameserver.address}"
        assert [row["name"] for row in listed["services"]] == ["t.dummy"]
        assert listed["services"][0]["sources"] == [nameserver.address]
        assert stop(daemon) == 0
    finally:
        stop(daemon)
        if daemon.stdout is not None:
            daemon.stdout.close()
