"""One lab file on several PCs (network namespaces): placement, reachable addresses, partitions.

PCs: ``ns`` (10.77.0.1, the nameserver), ``bench1`` (10.77.0.2, lab.laser),
``bench2`` (10.77.0.3, lab.stage, registering the address its lab-file
``advertise:`` names) and ``client`` (10.77.0.4). Tests run in file order on one lab; the
partition test comes last. Timings are printed (``-s``) for the record.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from multihost.harness import CHECK_INTERVAL, Agent, LabOnPCs, wait_until

pytestmark = [pytest.mark.network, pytest.mark.multihost, pytest.mark.timeout(180)]

CALL_TIMEOUT = 3.0
SLACK = 2.0  # seconds allowed beyond a promised bound, for a loaded CI machine
PYROLAB = [sys.executable, "-m", "pyrolab_jupyter.cli"]


def _connect(ns: str) -> str:
    return (f"lab = Lab({ns!r}, timeout={CALL_TIMEOUT})\n"
            "def status(name):\n"
            "    return next(r['status'] for r in lab.services() if r['name'] == name)\n")


def test_each_pc_starts_only_its_own_part(lab_pcs: LabOnPCs) -> None:
    ns, b1, b2 = lab_pcs.output("ns"), lab_pcs.output("bench1"), lab_pcs.output("bench2")
    assert "nameserver started" in ns and "bench1 started" not in ns and "bench2 started" not in ns
    assert "bench1 started" in b1 and "nameserver started" not in b1 and "bench2 started" not in b1
    assert "bench2 started" in b2 and "nameserver started" not in b2 and "bench1 started" not in b2
    assert "leaving bench1 (10.77.0.2), bench2 (10.77.0.3) to other PCs" in ns
    assert "leaving nameserver (10.77.0.1), bench2 (10.77.0.3) to other PCs" in b1
    # state beside the one lab file is per started part: nobody shares a log
    logs = {p.name for p in (lab_pcs.lab_file.parent / "logs").iterdir()}
    assert logs >= {"nameserver.log", "bench1.log", "bench2.log",
                    "up-nameserver.log", "up-bench1.log", "up-bench2.log"}
    assert "up.log" not in logs
    # off loopback, each PC listens only on the ports the lab file names
    expected = {"ns": {"10.77.0.1:9090"}, "bench1": {"10.77.0.2:7001"}, "bench2": {"10.77.0.3:7002"}}
    for name, ports in expected.items():
        listening = lab_pcs.pcs[name].run(["ss", "-ltnH"]).stdout.splitlines()
        local = {line.split()[3] for line in listening}
        assert {a for a in local if not a.startswith(("127.", "[::1]"))} == ports, (name, local)
    # the client PC has no part: up says so and starts nothing; check accepts the file there
    client = lab_pcs.pcs["client"]
    done = client.run([*PYROLAB, "up", str(lab_pcs.lab_file)])
    assert done.returncode == 1 and "no part of this lab runs on this PC" in done.stderr
    assert "--as NAME" in done.stderr
    done = client.run([*PYROLAB, "check", str(lab_pcs.lab_file)])
    assert done.returncode == 0, done.stderr
    # every service registered at an address of its own PC, seen from the client PC
    done = client.run([*PYROLAB, "ls", "--nameserver", lab_pcs.nameserver, "--json"])
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)["services"]}
    assert rows["lab.laser"]["uri"] == "PYRO:lab.laser@10.77.0.2:7001"
    assert rows["lab.stage"]["uri"] == "PYRO:lab.stage@10.77.0.3:7002"
    assert {r["status"] for r in rows.values()} == {"online"}


def test_client_on_a_fourth_pc_calls_and_draws_a_panel(lab_pcs: LabOnPCs) -> None:
    client = lab_pcs.agent("client")
    result = client.do(_connect(lab_pcs.nameserver) + (
        "laser = lab.connect('lab.laser')\n"
        "laser.power = 3.0\n"
        "from pyrolab_jupyter.jupyter import panel\n"
        "laser_panel = panel(laser)\n"
        "result = [laser.power, laser_panel.mode, sorted(laser_panel.properties)]\n"))
    assert result[0] == 3.0
    assert result[1] == "push"  # the daemon on bench1 reaches the client's callback on its own PC
    assert "power" in result[2]
    client.do("laser.power = 4.5")
    assert client.do("deadline = time.monotonic() + 15\n"
                     "while laser_panel.properties['power'].last_value != 4.5 and time.monotonic() < deadline:\n"
                     "    time.sleep(0.05)\n"
                     "result = laser_panel.properties['power'].last_value") == 4.5
    client.do("laser_panel.close()")


def test_a_daemon_is_reached_at_its_advertised_address(lab_pcs: LabOnPCs) -> None:
    # tests never bind a wildcard address, not even inside their own namespaces: the wildcard's choice of
    # the interface that routes to the nameserver is checked without a socket (tests/core/test_daemon.py)
    bench2 = lab_pcs.pcs["bench2"]
    listening = bench2.run(["ss", "-ltnH", "( sport = :7002 )"]).stdout
    assert f"{bench2.address}:7002" in listening
    client = lab_pcs.agent("client")
    result = client.do(_connect(lab_pcs.nameserver) + (
        "stage = lab.connect('lab.stage')\n"
        "stage.move_to(12.5)\n"
        "result = [stage._pyrolab_uri, stage.position]\n"))
    assert result == [f"PYRO:lab.stage@{bench2.address}:7002", 12.5]  # registered with its advertised address


def test_loopback_uri_is_refused_by_a_remote_nameserver(lab_pcs: LabOnPCs) -> None:
    # a daemon refuses to start: it names the settings that fix it
    done = lab_pcs.pcs["bench1"].run([*PYROLAB, "daemon", "pyrolab_jupyter.instruments.sim:Laser",
                                      "--name", "lab.lo", "--host", "127.0.0.1",
                                      "--nameserver", lab_pcs.nameserver], timeout=60)
    assert done.returncode != 0
    assert "loopback" in done.stderr and "advertise" in done.stderr and "--host" in done.stderr
    # the nameserver refuses a loopback URI sent from another PC, whoever sends it
    client = lab_pcs.agent("client")
    answer = client.send("from pyrolab_jupyter.core.proxies import new_proxy\n"
                         f"with new_proxy('PYRO:Pyro.NameServer@{lab_pcs.nameserver}', 5) as ns:\n"
                         "    ns.register('lab.sneaky', 'PYRO:lab.sneaky@127.0.0.1:7777')\n")
    assert not answer["ok"] and answer["error"] == "AccessDenied"
    assert "loopback" in answer["message"] and "advertise" in answer["message"]
    assert "lab.sneaky" not in client.do(_connect(lab_pcs.nameserver) + "result = lab.names()")


def test_nameserver_pc_cut_calls_go_on(lab_pcs: LabOnPCs) -> None:
    """The nameserver's cable is pulled for 8 s: listings fail in time, calls go straight to the daemons."""
    net, ns_pc = lab_pcs.network, lab_pcs.pcs["ns"]
    client = lab_pcs.agent("client")
    client.do(_connect(lab_pcs.nameserver) + "laser = lab.connect('lab.laser')")
    cut = time.monotonic()
    net.cut(ns_pc)
    try:
        answer = client.send("result = lab.services()", timeout=30)
        assert not answer["ok"] and answer["error"] in ("CallTimeout", "NameserverUnreachable"), answer
        assert answer["elapsed"] <= CALL_TIMEOUT + SLACK
        assert client.do("laser.power = 2.0\nresult = laser.power") == 2.0
        time.sleep(max(0.0, cut + 8 - time.monotonic()))
    finally:
        net.restore(ns_pc)
    restored = time.monotonic()
    statuses = "result = sorted({r['status'] for r in lab.services()})"
    wait_until(lambda: client.send(statuses).get("result") == ["online"], 30,
               "every service online again after the nameserver's link returned")
    print(f"\nnameserver PC cut: listing failed after {answer['elapsed']:.2f} s; "
          f"all online {time.monotonic() - restored:.2f} s after the restore")


# runs on the client PC: records when lab.stage's status and lab.laser's lock holder change
_WATCHER = """
import threading
changes = []  # (monotonic time, what, value)
def _watch():
    last = {}
    while True:
        for what, read in (('status', lambda: status('lab.stage')), ('holder', lambda: laser.lock_info())):
            try:
                value = read()
            except Exception:
                continue
            value = value['holder'] if isinstance(value, dict) else value
            if what not in last or last[what] != value:
                last[what] = value
                changes.append((time.monotonic(), what, value))
        time.sleep(0.05)
threading.Thread(target=_watch, daemon=True).start()
def first(what, value, after):
    return next((t for t, w, v in changes if w == what and v == value and t >= after), None)
"""


def _when(agent: Agent, what: str, value: object, after: float, timeout: float) -> float:
    """When the client PC's watcher first saw ``what`` become ``value`` after ``after`` (waits up to ``timeout``)."""
    stamp: float = wait_until(lambda: agent.do(f"result = first({what!r}, {value!r}, {after!r})"), timeout,
                              f"{what} == {value!r} seen from the client PC")
    return stamp


def test_link_cut_for_20_s_then_restored(lab_pcs: LabOnPCs) -> None:
    """bench2's cable is pulled for 20 s: its daemon and a lock holder on its PC become unreachable."""
    net, pcs = lab_pcs.network, lab_pcs.pcs
    timings: dict[str, float] = {}
    client, holder = lab_pcs.agent("client"), lab_pcs.agent("bench2")
    assert client.do(_connect(lab_pcs.nameserver) + (
        "laser = lab.connect('lab.laser')\n"
        "stage = lab.connect('lab.stage')\n"
        "events = []\n"
        "sub = stage.subscribe(lambda prop, value, t: events.append((prop, value, time.monotonic())))\n"
        "from pyrolab_jupyter.jupyter import panel\n"
        "stage_panel = panel(stage)\n"
        "result = [status('lab.stage'), stage_panel.mode]\n")) == ["online", "push"]
    lease = 6.0
    holder_id, locked_at = holder.do(_connect(lab_pcs.nameserver) + (
        "laser = lab.connect('lab.laser')\n"
        "stage = lab.connect('lab.stage')\n"
        f"handle = laser.lock(lease={lease})\n"
        "result = [handle.holder, time.monotonic()]\n"))
    client.do(_WATCHER)
    _when(client, "holder", holder_id, 0.0, 10)
    # half-open connections get reaped: the daemon's accepted sockets carry TCP keepalive
    accepted = pcs["bench1"].run(["ss", "-tnoH", "state", "established", "( sport = :7001 )"]).stdout
    assert "10.77.0.3" in accepted and "keepalive" in accepted
    pids = {name: up.pid for name, up in lab_pcs.ups.items()}

    cut = time.monotonic()
    net.cut(pcs["bench2"])
    holder.do("stage.move_to(20.0)")  # a change on the cut-off PC: its push to the client fails

    # calls end within their timeout (one deadline for lookup, retry and all), never hang
    for code in ("result = stage.position", "result = lab.connect('lab.stage')"):
        answer = client.send(code, timeout=30)
        assert not answer["ok"] and answer["error"] in ("ServiceOffline", "CallTimeout"), answer
        assert answer["elapsed"] <= CALL_TIMEOUT + SLACK, f"{code!r} took {answer['elapsed']:.1f} s"
        timings[f"failed call: {code.split('= ')[1]}"] = answer["elapsed"]

    # the nameserver marks the daemon offline within two check intervals
    offline_at = _when(client, "status", "offline", cut, 30)
    timings["offline marked after the cut"] = offline_at - cut
    assert offline_at - cut <= 2 * CHECK_INTERVAL + SLACK

    # the unreachable holder's lock ends at its lease; then others may lock
    freed_at = _when(client, "holder", None, locked_at, lease + 10)
    timings["lock freed after its lease end"] = freed_at - (locked_at + lease)
    assert locked_at + lease - 0.5 <= freed_at <= locked_at + lease + SLACK
    client.do("with laser.lock(lease=5):\n    laser.power = 1.0")
    # the panel stops saying online (its safety poll fails: no answer in time reads "unknown", a refused
    # connection "offline")
    wait_until(lambda: client.do("result = stage_panel.status_text") in ("offline", "unknown"), 20,
               "panel shows the service is not online")

    time.sleep(max(0.0, cut + 20 - time.monotonic()))
    net.restore(pcs["bench2"])
    restored = time.monotonic()

    # everything comes back by itself: registration, calls, subscriptions, the panel
    timings["online again after the restore"] = _when(client, "status", "online", restored, 30) - restored
    call_ok_at = client.do("while time.monotonic() < %r:\n"
                           "    try:\n"
                           "        stage.position\n"
                           "        break\n"
                           "    except (errors.ServiceOffline, errors.CallTimeout):\n"
                           "        time.sleep(0.1)\n"
                           "result = time.monotonic()" % (restored + 30))
    assert client.do("result = stage.position") == 20.0
    timings["first call back after the restore"] = call_ok_at - restored
    client.do("stage.move_to(33.0)")
    pushed = wait_until(lambda: client.do("result = next((e[2] for e in events if e[:2] == ('position', 33.0)), 0)"),
                        15, "a pushed update after the restore")
    timings["subscription pushes again after the restore"] = pushed - restored
    wait_until(lambda: client.do("result = [stage_panel.status_text, "
                                 "stage_panel.properties['position'].last_value]") == ["online", 33.0],
               20, "panel back online with the new position")
    timings["panel online again after the restore"] = time.monotonic() - restored
    assert holder.do("result = laser.power") == 1.0  # the cut-off PC's own client works again too

    # nothing was restarted
    for name, up in lab_pcs.ups.items():
        assert up.poll() is None and up.pid == pids[name]
        output = lab_pcs.output(name)
        assert "restarting" not in output and output.count("started (pid") == 1, output
    print("\nmulti-host partition timings (s):",
          json.dumps({k: round(v, 2) for k, v in timings.items()}, indent=2))
