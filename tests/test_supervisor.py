"""``pyrolab up`` in real processes: start, restart after kill -9, repopulate, stop on SIGINT; the restart policy."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import end_child, free_port, port_is_free, wait_for

from pyrolab_jupyter import Lab
from pyrolab_jupyter.supervisor import ChildSpec, RestartPolicy, Supervisor

LAB = """\
nameserver: {{host: 127.0.0.1, port: {port}, check_interval: 0.5}}
daemons:
  bench1:
    heartbeat: 0.5
    services:
      lab.laser: {{class: "pyrolab_jupyter.instruments.sim:Laser", description: Tunable laser}}
  bench2:
    heartbeat: 0.5
    services:
      lab.stage: {{class: "pyrolab_jupyter.instruments.sim:Stage"}}
      lab.meter: {{class: "pyrolab_jupyter.instruments.sim:PowerMeter"}}
"""


class Up:
    """``pyrolab up`` as a real process; its console lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "pyrolab_jupyter.cli", "up", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def pids(self, name: str) -> list[int]:
        """Every pid the supervisor reported for child ``name``, oldest first."""
        pattern = re.compile(rf"^\[up\] {re.escape(name)} started \(pid (\d+)\)$")
        return [int(m.group(1)) for line in list(self.lines) if (m := pattern.match(line))]

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def online(address: str) -> dict[str, str]:
    """name → uri of every service the nameserver lists as online ({} while it is down)."""
    try:
        rows = Lab(address, timeout=1.0).services()
    except (ConnectionError, TimeoutError):
        return {}
    return {r["name"]: r["uri"] for r in rows if r["status"] == "online"}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.network
def test_up_restarts_what_dies_and_stops_everything(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(LAB.format(port=port))
    logs = tmp_path / "mylogs"
    up = Up(str(lab_file), "--logs", str(logs))
    try:
        services = wait_for(lambda: s if len(s := online(address)) == 3 else None, timeout=30)
        listing = subprocess.run([sys.executable, "-m", "pyrolab_jupyter.cli", "ls", "--nameserver", address,
                                  "--json"], capture_output=True, text=True, timeout=30)
        payload = json.loads(listing.stdout)
        assert payload["nameserver"] == address
        assert {r["name"]: r["status"] for r in payload["services"]} == dict.fromkeys(services, "online")

        # kill -9 one daemon: it comes back at a new address, the other is undisturbed
        (bench1,), (bench2,) = up.pids("bench1"), up.pids("bench2")
        os.kill(bench1, signal.SIGKILL)
        died = time.monotonic()
        wait_for(lambda: len(up.pids("bench1")) == 2, timeout=5)  # restarted within 2 s + spawn
        respawned = time.monotonic() - died
        wait_for(lambda: online(address).get("lab.laser") not in (None, services["lab.laser"]), timeout=15,
                 interval=0.02)
        daemon_back = time.monotonic() - died
        after = online(address)
        assert up.pids("bench2") == [bench2] and alive(bench2)
        assert after["lab.stage"] == services["lab.stage"] and after["lab.meter"] == services["lab.meter"]
        print(f"\ndaemon kill -9 -> new process {respawned:.2f} s, services online again {daemon_back:.2f} s")

        # clients reconnect: a RemoteService made before the restart still works after it
        laser = Lab(address).connect("lab.laser")
        laser_uri = after["lab.laser"]

        # kill -9 the nameserver: it is restarted and every daemon re-registers
        (ns_pid,) = up.pids("nameserver")
        os.kill(ns_pid, signal.SIGKILL)
        died = time.monotonic()
        wait_for(lambda: online(address) == {}, timeout=5, interval=0.02)
        wait_for(lambda: online(address).keys() == services.keys(), timeout=15, interval=0.02)
        ns_back = time.monotonic() - died
        assert len(up.pids("nameserver")) == 2
        assert online(address)["lab.laser"] == laser_uri
        print(f"nameserver kill -9 -> repopulated with all 3 services {ns_back:.2f} s")
        assert laser.describe()["description"]

        # the second daemon restart makes the old RemoteService re-look-up its new address
        (_, bench1_now) = up.pids("bench1")
        os.kill(bench1_now, signal.SIGKILL)
        wait_for(lambda: online(address).get("lab.laser") not in (None, laser_uri), timeout=15)
        assert wait_for(lambda: laser.describe(), timeout=10)
        laser.disconnect()

        daemon_ports = {int(uri.rpartition(":")[2]) for uri in online(address).values()}
        every_pid = [p for name in ("nameserver", "bench1", "bench2") for p in up.pids(name)]
    finally:
        started = time.monotonic()
        code = up.stop()
        stopped = time.monotonic() - started
    assert code == 0, "\n".join(up.lines)
    print(f"SIGINT -> everything stopped in {stopped:.2f} s")
    assert stopped < 10
    assert not any(alive(p) for p in every_pid)
    assert port_is_free(port) and all(port_is_free(p) for p in daemon_ports)
    text = "\n".join(up.lines)
    assert "\x1b[" not in text  # piped: no colour
    assert "[bench1] " in text and "[nameserver] " in text
    assert {p.name for p in logs.iterdir()} >= {"nameserver.log", "bench1.log", "bench2.log", "up.log"}
    assert "serving lab.laser" in (logs / "bench1.log").read_text()
    assert "killed by signal 9" in (logs / "bench1.log").read_text()


@pytest.mark.network
def test_a_lock_survives_kill_9_of_its_daemon_under_up(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(f"nameserver: {{host: 127.0.0.1, port: {port}, check_interval: 0.5}}\n"
                        "daemons:\n  bench1:\n    heartbeat: 0.5\n    services:\n"
                        "      lab.laser: {class: 'pyrolab_jupyter.instruments.sim:Laser'}\n")
    up = Up(str(lab_file), "--logs", str(tmp_path / "logs"))
    try:
        before = wait_for(lambda: online(address).get("lab.laser"), timeout=30)
        laser = Lab(address, timeout=10).connect("lab.laser")
        laser.lock(lease=120)
        (pid,) = up.pids("bench1")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: online(address).get("lab.laser") not in (None, before), timeout=30)
        info = laser.lock_info()  # reconnects to the restarted daemon, which restored the lock table
        assert info is not None and info["mine"], info
        other = subprocess.run([sys.executable, "-c", "from pyrolab_jupyter import Lab\n"
                                f"r = Lab({address!r}, timeout=10).connect('lab.laser')\n"
                                "try:\n    r.lock(lease=5); print('locked')\n"
                                "except Exception as e:\n    print(type(e).__name__)\n"],
                               capture_output=True, text=True, timeout=60, check=False)
        assert other.stdout.strip() == "ServiceLocked", other.stdout + other.stderr
        laser.unlock()
    finally:
        up.stop()
    assert (tmp_path / "logs" / "bench1.locks.json").exists()


@pytest.mark.network
def test_up_keeps_serving_when_nobody_reads_its_console(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(f"nameserver: {{host: 127.0.0.1, port: {port}, check_interval: 0.5}}\n"
                        "daemons:\n  talker:\n    heartbeat: 0.5\n    services:\n"
                        "      lab.chatty: {class: 'labservices:Chatty'}\n")
    proc = subprocess.Popen([sys.executable, "-m", "pyrolab_jupyter.cli", "up", str(lab_file), "--logs",
                             str(tmp_path / "logs")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:  # stdout is a pipe nobody reads: 600 KB of log lines fill it many times over
        wait_for(lambda: "lab.chatty" in online(address), timeout=30)
        chatty = Lab(address, timeout=30).connect("lab.chatty")
        for _ in range(3):
            assert chatty.talk(1000) == 1000
            assert "lab.chatty" in online(address)
        assert wait_for(lambda: "00999 " in (tmp_path / "logs" / "talker.log").read_text(), timeout=10)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 0


@pytest.mark.network
def test_daemons_may_start_before_an_external_nameserver(tmp_path):
    """With ``nameserver: host:port`` (external), ``up`` starts only daemons; they wait for it."""
    from pyrolab_jupyter import start_nameserver

    port = free_port()
    address = f"127.0.0.1:{port}"
    lab_file = tmp_path / "lab.yaml"
    text = LAB.format(port=port).replace(f"{{host: 127.0.0.1, port: {port}, check_interval: 0.5}}", address)
    lab_file.write_text(text)
    up = Up(str(lab_file))
    try:
        wait_for(lambda: up.pids("bench1") and up.pids("bench2"), timeout=15)
        assert up.pids("nameserver") == []
        time.sleep(0.5)
        with start_nameserver("127.0.0.1", port, check_interval=0.5):
            wait_for(lambda: len(online(address)) == 3, timeout=15)
    finally:
        assert up.stop() == 0
    assert (tmp_path / "logs" / "bench1.log").exists()  # default: logs/ beside the lab file


def run_in_thread(sup: Supervisor) -> tuple[threading.Thread, list[int]]:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(sup.run(install_signals=False)), daemon=True)
    thread.start()
    return thread, result


def test_crash_loop_is_given_up_on_and_reported(tmp_path):
    crash = ChildSpec("flaky", [sys.executable, "-c", "print('about to fail', flush=True); raise SystemExit(3)"])
    steady = ChildSpec("steady", [sys.executable, "-c", "import signal; signal.pause()"])  # until stopped
    console = io.StringIO()
    policy = RestartPolicy(first=0.05, cap=0.2, stable=10, max_restarts=3, window=60)
    sup = Supervisor([steady, crash], tmp_path, policy=policy, console=console, stop_timeout=5)
    thread, result = run_in_thread(sup)
    try:
        wait_for(lambda: "not restarting it" in console.getvalue(), timeout=20)
        out = console.getvalue()
        assert "flaky exited with code 3" in out
        assert "flaky exited with code 3; it crashed 4 times in 60 s; not restarting it; see " in out
        assert str(tmp_path / "flaky.log") in out
        assert out.count("[up] flaky started") == 4
        assert "[flaky] about to fail" in out and "\x1b[" not in out
        assert sup.children[0].process is not None and sup.children[0].process.poll() is None  # untouched
    finally:
        sup.request_stop()
        thread.join(15)
    assert result == [0]
    assert "about to fail" in (tmp_path / "flaky.log").read_text()


def test_first_restart_is_quick_and_backoff_grows(tmp_path):
    crash = ChildSpec("flaky", [sys.executable, "-c", "raise SystemExit(1)"])
    console = io.StringIO()
    sup = Supervisor([crash], tmp_path, policy=RestartPolicy(max_restarts=100), console=console)
    thread, result = run_in_thread(sup)
    try:
        wait_for(lambda: console.getvalue().count("restarting in") >= 3, timeout=20)
        delays = [float(d) for d in re.findall(r"restarting in ([\d.]+) s", console.getvalue())]
        assert delays[:3] == [0.5, 1.0, 2.0]
    finally:
        sup.request_stop()
        thread.join(15)
    assert result == [0]


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path):
    stubborn = ChildSpec("stubborn", [sys.executable, "-c",
                                      "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                      "print('ready', flush=True); signal.pause()"])
    console = io.StringIO()
    sup = Supervisor([stubborn], tmp_path, console=console, stop_timeout=1.0)
    thread, result = run_in_thread(sup)
    wait_for(lambda: "[stubborn] ready" in console.getvalue(), timeout=10)
    started = time.monotonic()
    sup.request_stop()
    thread.join(15)
    assert time.monotonic() - started < 5
    assert result == [1]
    assert "stubborn did not stop in time; killed" in console.getvalue()


def test_colour_only_on_a_terminal(tmp_path):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    sup = Supervisor([], Path(tmp_path), console=tty)
    sup.say("hello")
    assert ("\x1b[" in tty.getvalue()) == ("NO_COLOR" not in os.environ)


@pytest.mark.network
def test_up_refuses_a_taken_nameserver_port(tmp_path, capsys):
    from pyrolab_jupyter import cli, start_nameserver

    with start_nameserver("127.0.0.1", 0) as ns:
        port = int(ns.address.rpartition(":")[2])
        lab_file = tmp_path / "lab.yaml"
        lab_file.write_text(LAB.format(port=port))
        assert cli.main(["up", str(lab_file)]) == 1
    err = capsys.readouterr().err
    assert f"already listens at 127.0.0.1:{port}" in err


@pytest.mark.network
def test_up_serves_a_lab_file_with_security_over_tls(tmp_path, lab_ca):
    from pyrolab_jupyter.errors import NameserverUnreachable

    lab_ca.security("up-bench", "daemon")
    port = free_port()
    address = f"127.0.0.1:{port}"
    f = lab_ca.folder
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(
        f"security: {{certfile: {f}/up-bench.pem, keyfile: {f}/up-bench.key, cafile: {f}/lab-ca.pem}}\n"
        + LAB.format(port=port))
    assert subprocess.run([sys.executable, "-m", "pyrolab_jupyter.cli", "check", str(lab_file)],
                          capture_output=True, text=True, timeout=60).returncode == 0
    up = Up(str(lab_file), "--logs", str(tmp_path / "logs"))
    try:
        me = Lab(address, timeout=5, security=lab_ca.security("up-user", "user"))
        wait_for(lambda: len([r for r in me.services() if r["status"] == "online"]) == 3, timeout=30)
        laser = me.connect("lab.laser")
        laser.set_power(1.25)
        assert laser.history(n=1)[0]["who"] == f"up-user (pid {os.getpid()})"
        with pytest.raises(NameserverUnreachable):
            Lab(address, timeout=3).services()  # plain clients are refused
        laser.disconnect()
    finally:
        code = up.stop()
    assert code == 0, "\n".join(up.lines)
    audit = (tmp_path / "logs" / "bench1.audit.jsonl").read_text().splitlines()
    assert json.loads(audit[-1])["member"] == "set_power"


def test_a_daemon_child_receives_the_lab_file_s_safety_rules() -> None:
    from pyrolab_jupyter.core.config import parse_lab
    from pyrolab_jupyter.supervisor import lab_children

    lab = parse_lab("daemons:\n  b1:\n    services:\n      lab.laser:\n"
                    "        class: pyrolab_jupyter.instruments.sim:Laser\n"
                    "        limits: {set_power.mw: [0, 20]}\n"
                    "        ramps: {set_power.mw: {step: 1, interval: 0.05, reads: power}}\n")
    from pyrolab_jupyter.serving import DaemonOrder

    [_, daemon] = lab_children(lab)
    spec = json.loads(daemon.argv[-1])["daemon"]["services"]["lab.laser"]
    assert spec["class"] == "pyrolab_jupyter.instruments.sim:Laser"  # the lab file's own key
    assert spec["limits"] == {"set_power.mw": [0, 20]}
    # the child parses the order with the same models: what it gets equals what the file said
    received = DaemonOrder.model_validate_json(daemon.argv[-1]).daemon
    assert received == lab.daemons["b1"]
    assert received.services["lab.laser"].ramps["set_power.mw"].step == 1


def test_a_daemon_child_records_where_the_lab_file_says(tmp_path) -> None:
    from pyrolab_jupyter.core.config import parse_lab
    from pyrolab_jupyter.supervisor import lab_children

    lab = parse_lab("daemons:\n  b1:\n    services:\n      lab.gs200:\n"
                    "        class: qcodes.instrument_drivers.yokogawa:YokogawaGS200\n"
                    "        args: {name: gs200, address: 'GPIB::1::INSTR'}\n"
                    "        record: sessions/gs200.jsonl\n"
                    "      lab.laser: {class: 'pyrolab_jupyter.instruments.sim:Laser'}\n", base_dir=tmp_path)
    [_, daemon] = lab_children(lab)
    services = json.loads(daemon.argv[-1])["daemon"]["services"]
    assert services["lab.gs200"]["record"] == str(tmp_path / "sessions" / "gs200.jsonl")  # beside the lab file
    assert services["lab.laser"]["record"] is None


@pytest.mark.network
def test_up_serves_foreign_drivers_named_in_the_lab_file(tmp_path):
    pytest.importorskip("qcodes")
    port = free_port()
    address = f"127.0.0.1:{port}"
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(f"""\
nameserver: {{host: 127.0.0.1, port: {port}, check_interval: 0.5}}
daemons:
  rack:
    heartbeat: 0.5
    services:
      lab.supply: {{class: "adapted:PlainSupply", adapter: plain, args: {{volts: 2.0}}}}
      lab.dac:
        class: qcodes.instrument_drivers.mock_instruments:DummyInstrument
        adapter: qcodes
        args: {{name: dac, gates: [ch1]}}
""")
    up = Up(str(lab_file))
    try:
        wait_for(lambda: set(online(address)) == {"lab.supply", "lab.dac"}, timeout=60, interval=0.2)
        lab = Lab(address, timeout=10)
        supply, dac = lab.connect("lab.supply"), lab.connect("lab.dac")
        assert supply.voltage == 2.0
        dac.ch1 = 5.0
        assert dac.ch1 == 5.0 and dac.describe()["properties"]["ch1"]["schema"]["x-unit"] == "V"
        supply.disconnect()
        dac.disconnect()
    finally:
        assert up.stop() == 0


@pytest.mark.parametrize("line, port", [
    ("2026-01-01 INFO pyrolab.daemon: serving lab.laser at PYRO:lab.laser@127.0.0.1:40811", 40811),
    ("serving lab.laser at PYRO:lab.laser@[::1]:40812", 40812),
    ("nameserver at 127.0.0.1:9090 (check every 5 s, on offline: keep); Ctrl-C stops it", 9090),
    ("nameserver at [fe80::1]:9091 (check every 5 s)", 9091),
    ("the nameserver at 127.0.0.1:9090 does not answer yet", None),
])
def test_ps_reads_the_port_from_a_child_s_start_line(line, port):
    from pyrolab_jupyter.supervisor import _PORT_LINE

    match = _PORT_LINE.search(line)
    assert (int(match.group(1)) if match else None) == port


@pytest.mark.network
def test_a_lab_file_daemon_registers_with_its_nameservers_and_keeps_instance_modes(nameserver_factory):
    import subprocess

    from pyrolab_jupyter import Lab
    from pyrolab_jupyter.core.config import parse_lab
    from pyrolab_jupyter.supervisor import lab_children

    own, extra = nameserver_factory(), nameserver_factory()
    lab = parse_lab(f"nameserver: '{own.address}'\ndaemons:\n  b1:\n    heartbeat: 0.5\n"
                    f"    nameservers: ['{extra.address}']\n    services:\n"
                    "      calc: {class: 'modeservices:Counter', instance_mode: percall}\n")
    [child] = lab_children(lab)
    proc = subprocess.Popen(child.argv, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for ns in (own, extra):
            wait_for(lambda ns=ns: "calc" in Lab(ns.address).names(), timeout=30)
        calc = Lab([own.address, extra.address]).connect("calc")
        assert calc.describe()["instance_mode"] == "percall"
        assert [calc.bump(), calc.bump()] == [1, 1]
        calc.disconnect()
    finally:
        end_child(proc, grace=15)
