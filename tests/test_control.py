"""`pyrolab up --detach` / `ps` / `logs` / `reload` / `down` in real processes, through the control socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, port_is_free, wait_for

from pyrolab_jupyter import Lab
from pyrolab_jupyter.control import running_ups
from pyrolab_jupyter.core.proxies import forget_lock

OTHER_CLIENT = """\
import sys
from pyrolab_jupyter import Lab
try:
    Lab(sys.argv[1], timeout=5).connect("lab.laser").wavelength = 1560.0
    print("not locked")
except Exception as err:
    print(type(err).__name__)
"""

DAEMON = """\
  {name}:
    heartbeat: 0.5
    services:
      {service}: {{class: "pyrolab_jupyter.instruments.sim:{cls}"{extra}}}
"""


def lab_text(port: int, daemons: list[tuple[str, str, str, str]]) -> str:
    body = "".join(DAEMON.format(name=n, service=s, cls=c, extra=e) for n, s, c, e in daemons)
    return f"nameserver: {{host: 127.0.0.1, port: {port}, check_interval: 0.5}}\ndaemons:\n{body}"


def pyrolab(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyrolab_jupyter.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def ps(lab: Path) -> dict[str, dict[str, Any]]:
    done = pyrolab("ps", str(lab), "--json")
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout)["processes"]}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not yet reaped by its parent) is gone for our purpose
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


@pytest.fixture
def detached(tmp_path: Path) -> Iterator[list[Path]]:
    """Lab files started with --detach by the test; whatever still runs at the end is stopped."""
    labs: list[Path] = []
    yield labs
    for lab in labs:
        for state in running_ups(lab.parent / "logs"):
            if alive(state.pid):
                pyrolab("down", str(lab), timeout=60)
            if alive(state.pid):
                os.kill(state.pid, signal.SIGKILL)  # its children see their stdin close and stop


def all_serving(lab: Path) -> dict[str, dict[str, Any]] | None:
    """ps rows once every process runs and said where it listens."""
    rows = ps(lab)
    return rows if all(r["state"] == "running" and r["port"] for r in rows.values()) else None


def start(lab: Path, labs: list[Path]) -> dict[str, dict[str, Any]]:
    labs.append(lab)
    done = pyrolab("up", str(lab), "--detach")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "running in the background" in done.stdout

    rows = wait_for(lambda: all_serving(lab), timeout=60)
    assert isinstance(rows, dict)
    return rows


def test_detach_ps_logs_down_leaves_nothing(tmp_path: Path, detached: list[Path]) -> None:
    port = free_port()
    lab = tmp_path / "lab.yaml"
    lab.write_text(lab_text(port, [("bench1", "lab.laser", "Laser", "")]))
    rows = start(lab, detached)
    assert set(rows) == {"nameserver", "bench1"}
    assert rows["nameserver"]["port"] == port
    assert all(alive(r["pid"]) and r["restarts"] == 0 and r["uptime"] >= 0 for r in rows.values())
    daemon_port = rows["bench1"]["port"]
    assert not port_is_free(daemon_port)
    table = pyrolab("ps", str(lab))
    assert table.returncode == 0 and table.stdout.split()[:6] == ["NAME", "PID", "STATE", "RESTARTS", "UPTIME", "PORT"]

    def logged(name: str, text: str) -> bool:
        return text in pyrolab("logs", str(lab), name).stdout

    assert wait_for(lambda: logged("bench1", f"serving lab.laser at PYRO:lab.laser@127.0.0.1:{daemon_port}"))
    assert wait_for(lambda: logged("nameserver", f"nameserver at 127.0.0.1:{port}"))
    assert "serving lab.laser" not in (tmp_path / "logs" / "up.out").read_text()  # logs rotate; up.out must not grow
    unknown = pyrolab("logs", str(lab), "bench")
    assert unknown.returncode == 1 and "did you mean 'bench1'" in unknown.stderr
    [state] = running_ups(tmp_path / "logs")
    supervisor_pid = state.pid

    done = pyrolab("down", str(lab))
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: not any(alive(r["pid"]) for r in rows.values()) and not alive(supervisor_pid))
    assert port_is_free(port) and port_is_free(daemon_port)
    assert running_ups(tmp_path / "logs") == [] and not Path(state.socket).exists()
    gone = pyrolab("ps", str(lab))
    assert gone.returncode == 1 and "no `pyrolab up` of it runs" in gone.stderr


def test_reload_touches_only_what_changed(tmp_path: Path, detached: list[Path]) -> None:
    port = free_port()
    lab = tmp_path / "lab.yaml"
    before = [("bench1", "lab.laser", "Laser", ""), ("bench2", "lab.stage", "Stage", ""),
              ("bench3", "lab.meter", "PowerMeter", "")]
    lab.write_text(lab_text(port, before))
    rows = start(lab, detached)
    address = f"127.0.0.1:{port}"
    assert wait_for(lambda: {"lab.laser", "lab.stage", "lab.meter"} <= set(Lab(address, timeout=2).names()))

    # a client holding a lock and a connection on the daemon that stays
    laser = Lab(address, timeout=5).connect("lab.laser")
    laser.lock(lease=300)
    raw = socket.create_connection(("127.0.0.1", rows["bench1"]["port"]), timeout=5)
    try:
        # broken file: refused with its errors, nothing touched
        good = lab.read_text()
        lab.write_text(good.replace("Stage", "NoSuchClass"))
        refused = pyrolab("reload", str(lab))
        assert refused.returncode == 1
        assert "NoSuchClass" in refused.stderr and "nothing running is touched" not in refused.stdout
        assert "the running lab is unchanged" in refused.stderr
        assert {n: r["pid"] for n, r in ps(lab).items()} == {n: r["pid"] for n, r in rows.items()}

        # bench2's args change, bench3 goes, bench4 comes, bench1 is untouched
        after = [before[0], ("bench2", "lab.stage", "Stage", ', description: "moved stage"'),
                 ("bench4", "lab.source", "Laser", "")]
        lab.write_text(lab_text(port, after))
        done = pyrolab("reload", str(lab))
        assert done.returncode == 0, done.stderr
        assert "restarted bench2" in done.stdout and "started bench4" in done.stdout
        assert "stopped bench3" in done.stdout and "unchanged nameserver, bench1" in done.stdout

        now = wait_for(lambda: all_serving(lab), timeout=60)
        assert isinstance(now, dict) and set(now) == {"nameserver", "bench1", "bench2", "bench4"}
        assert now["bench1"]["pid"] == rows["bench1"]["pid"] and now["nameserver"]["pid"] == rows["nameserver"]["pid"]
        assert now["bench2"]["pid"] != rows["bench2"]["pid"]
        assert wait_for(lambda: not alive(rows["bench3"]["pid"]) and not alive(rows["bench2"]["pid"]))
        assert wait_for(lambda: "lab.source" in Lab(address, timeout=2).names())
        assert wait_for(lambda: Lab(address, timeout=2).entry("lab.stage") is not None and
                        Lab(address, timeout=2).connect("lab.stage").describe().get("description") == "moved stage")

        # the untouched daemon kept its connections and the lock
        raw.setblocking(False)
        with pytest.raises(BlockingIOError):  # still open: no data, no end of stream
            raw.recv(1, socket.MSG_PEEK)
        assert laser.lock_info() is not None
        laser.wavelength = 1551.0
        other = subprocess.run([sys.executable, "-c", OTHER_CLIENT, address], capture_output=True, text=True,
                               timeout=60)
        assert other.stdout.strip() == "ServiceLocked", other.stdout + other.stderr
    finally:
        raw.close()
        try:
            laser.unlock()
        finally:
            forget_lock("lab.laser")  # this test process must not claim the lock in later tests
            laser.disconnect()


def test_reload_and_down_reach_a_foreground_up_and_bad_requests_cost_nothing(tmp_path: Path) -> None:
    port = free_port()
    lab = tmp_path / "lab.yaml"
    lab.write_text(lab_text(port, [("bench1", "lab.laser", "Laser", "")]))
    up = subprocess.Popen([sys.executable, "-m", "pyrolab_jupyter.cli", "up", str(lab)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rows = wait_for(lambda: all_serving(lab), timeout=60)
        assert isinstance(rows, dict) and set(rows) == {"nameserver", "bench1"}
        [state] = running_ups(tmp_path / "logs")
        assert state.pid == up.pid and state.here

        # hostile control clients: an endless line, a non-object, garbage; each answered, none harmful
        for payload in (b"x" * 200_000, b"[1, 2]\n", b"\xff\xfe\n", b'{"op": "format c:"}\n'):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(state.socket)
                try:
                    sock.sendall(payload)
                except OSError:
                    pass  # it may close on us once the cap is passed
                answer = sock.recv(65536)
            assert b"error" in answer, (payload[:20], answer)

        lab.write_text(lab_text(port, [("bench1", "lab.laser", "Laser", ""), ("bench2", "lab.meter", "PowerMeter", "")]))
        done = pyrolab("reload", str(lab))
        assert done.returncode == 0 and "started bench2" in done.stdout, done.stdout + done.stderr
        now = wait_for(lambda: all_serving(lab), timeout=60)
        assert isinstance(now, dict) and now["bench1"]["pid"] == rows["bench1"]["pid"] and "bench2" in now

        stopped = pyrolab("down", str(lab))
        assert stopped.returncode == 0, stopped.stderr
        assert up.wait(30) == 0
        assert wait_for(lambda: not any(alive(r["pid"]) for r in now.values()))
        assert port_is_free(port) and running_ups(tmp_path / "logs") == []
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait(5)


def test_each_part_has_its_own_supervisor_and_state(tmp_path: Path, detached: list[Path]) -> None:
    port = free_port()
    lab = tmp_path / "lab.yaml"
    lab.write_text(lab_text(port, [("bench1", "lab.laser", "Laser", ""), ("bench2", "lab.meter", "PowerMeter", "")]))
    detached.append(lab)
    for part in ("nameserver", "bench1"):  # as two PCs sharing the lab's folder would
        done = pyrolab("up", str(lab), "--detach", "--as", part)
        assert done.returncode == 0, done.stdout + done.stderr
    states = running_ups(tmp_path / "logs")
    assert sorted(s.state_file.name for s in states) == ["up-bench1.json", "up-nameserver.json"]
    assert len({s.pid for s in states}) == 2 and len({s.socket for s in states}) == 2
    rows = wait_for(lambda: all_serving(lab), timeout=60)
    assert isinstance(rows, dict) and set(rows) == {"nameserver", "bench1"}  # bench2 is nobody's here

    lab.write_text(lab_text(port, [("bench1", "lab.laser", "Laser", ', description: "new"'),
                                   ("bench2", "lab.meter", "PowerMeter", "")]))
    done = pyrolab("reload", str(lab))
    assert done.returncode == 0, done.stderr
    assert "(up-bench1): restarted bench1" in done.stdout and "(up-nameserver): unchanged nameserver" in done.stdout

    assert pyrolab("down", str(lab)).returncode == 0
    assert wait_for(lambda: not any(alive(s.pid) for s in states))
    assert running_ups(tmp_path / "logs") == [] and port_is_free(port)
