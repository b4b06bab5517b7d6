"""RemoteService: timeouts, reconnect after a daemon restart, offline errors, help and completion."""

from __future__ import annotations

import inspect
import time

import pytest
from conftest import free_port, wait_for

from pyrolab_jupyter import Lab
from pyrolab_jupyter.errors import CallTimeout, NameserverUnreachable, ServiceOffline, UnknownService

pytestmark = pytest.mark.network


def test_timeout_raises_and_object_still_works(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy", timeout=0.5)
    with pytest.raises(CallTimeout, match=r"t.dummy.sleep got no answer within 0.5 s") as info:
        remote.sleep(2)
    assert isinstance(info.value, TimeoutError)
    remote._pyrolab_timeout = 5
    assert remote.echo("after") == "after"


def test_default_timeout_is_finite(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    assert 0 < remote._pyrolab_timeout < 3600


def test_reconnects_when_daemon_returns_at_new_address(lab, nameserver, daemon_factory):
    first = daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    old_uri = remote._pyrolab_uri
    first.process.kill()
    first.process.wait(10)
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    assert remote.echo("back") == "back"
    assert remote._pyrolab_uri != old_uri


def test_offline_service_error_is_helpful(lab, nameserver, daemon_factory):
    handle = daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address, heartbeat=60)
    remote = lab.connect("t.dummy", timeout=2)
    handle.process.kill()
    handle.process.wait(10)
    wait_for(lambda: lab.entry("t.dummy")["status"] == "offline", timeout=10)
    with pytest.raises(ServiceOffline, match="t.dummy does not answer.*last seen.*pyrolab ls"):
        remote.echo(1)


def test_unknown_name_suggests_close_ones(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    with pytest.raises(UnknownService, match=rf"{nameserver.address}.*did you mean 't.dummy'"):
        lab.connect("t.dumy")


def test_help_dir_and_signatures(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    assert {"set_power", "power", "lock", "describe"} <= set(dir(remote))
    sig = inspect.signature(remote.set_power)
    assert list(sig.parameters) == ["mw"] and "mW" in str(sig)
    assert remote.set_power.__doc__.startswith("Set the output power.")
    assert "mw : number, 0 to 50 mW" in remote.set_power.__doc__
    assert "power" in remote.__doc__ and "set_power" in remote.__doc__
    with pytest.raises(AttributeError, match="did you mean set_power"):
        remote.set_powr(1)
    with pytest.raises(AttributeError, match="no exposed property"):
        remote.typo = 1


def test_describe_is_plain_json_dict(lab, nameserver, daemon_factory):
    import json

    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    description = lab.connect("t.dummy").describe()
    assert isinstance(description, dict)
    json.dumps(description)
    assert description["methods"]["set_power"]["parameters"]["properties"]["mw"] == {
        "type": "number", "minimum": 0, "maximum": 50, "x-unit": "mW"}
    assert description["properties"]["mode"]["schema"]["enum"] == ["cw", "pulsed"]


def test_subscription_delivers_pushed_changes(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    other = Lab(nameserver.address).connect("t.dummy")
    seen: list[tuple[str, object]] = []
    subscription = remote.subscribe(lambda prop, value, t: seen.append((prop, value)))
    other.power = 12  # another client's change
    wait_for(lambda: ("power", 12.0) in seen, timeout=5)  # (changes close together coalesce to the latest)
    remote.announce(33.0)  # a value the service announces by itself
    wait_for(lambda: ("power", 33.0) in seen, timeout=5)
    with other.lock(lease=10) as held:  # lock changes are announced too
        wait_for(lambda: ("pyrolab.locked_by", held.holder) in seen, timeout=5)
    wait_for(lambda: seen[-1] == ("pyrolab.locked_by", None), timeout=5)
    subscription.close()
    count = len(seen)
    other.power = 13
    time.sleep(0.3)
    assert len(seen) == count


def test_lab_defaults_to_env_then_localhost(monkeypatch):
    monkeypatch.setenv("PYROLAB_NAMESERVER", "10.1.2.3:9999")
    assert Lab().address == "10.1.2.3:9999"
    monkeypatch.delenv("PYROLAB_NAMESERVER")
    assert Lab().address == "127.0.0.1:9090"
    port = free_port()
    assert Lab(f"PYRO:Pyro.NameServer@127.0.0.1:{port}").address == f"127.0.0.1:{port}"


def test_subscription_survives_a_daemon_restart(lab, nameserver, daemon_factory):
    first = daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    seen: list[tuple[str, object]] = []
    remote.subscribe(lambda prop, value, t: seen.append((prop, value)))
    first.process.kill()
    first.process.wait(10)
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    assert remote.echo("reconnect") == "reconnect"  # the call that finds the new daemon renews it
    Lab(nameserver.address).connect("t.dummy").power = 21
    wait_for(lambda: ("power", 21.0) in seen, timeout=5)


_SUMMARY = """
import sys
from pyrolab_jupyter import Lab
bundle = Lab(sys.argv[1]).connect("t.dummy")._repr_mimebundle_()
print(sorted(bundle), "ipywidgets" in sys.modules)
"""


def test_without_the_jupyter_side_a_service_shows_an_html_summary(nameserver, daemon_factory):
    import subprocess
    import sys

    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    out = subprocess.run([sys.executable, "-c", _SUMMARY, nameserver.address], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "['text/html', 'text/plain'] False", out.stderr


def test_read_properties_over_the_wire_returns_a_failing_value_as_an_error(lab, nameserver, daemon_factory):
    from pyrolab_jupyter.errors import PyroLabError, RemoteError

    daemon_factory({"t.sensors": "labservices:Sensors"}, nameserver.address)
    remote = lab.connect("t.sensors")
    values = remote.read_properties()
    assert values["good"] == 1.5
    broken, missing = values["broken"], values["missing"]
    assert isinstance(broken, RemoteError) and isinstance(broken, PyroLabError)
    assert broken.remote_type == "labservices.DeviceFault" and "sensor unplugged" in str(broken)
    assert isinstance(missing, PyroLabError) and missing.remote_type == "KeyError" and "channel 7" in str(missing)
    assert set(remote.read_properties("good", "broken")) == {"good", "broken", "__time__"}
    before = remote.reads()
    remote.read_properties(*["good"] * 10_000)  # a name asked for many times is read once
    assert remote.reads() == before + 1


_CTRL_C = """
import signal, sys, threading, time
from pyrolab_jupyter import Lab
stage = Lab(sys.argv[1]).connect("t.stage")
stage.velocity = 1.0
main = threading.main_thread().ident
def interrupt():
    while not stage.moving:
        time.sleep(0.02)
    time.sleep(0.3)
    signal.pthread_kill(main, signal.SIGINT)
threading.Thread(target=interrupt, daemon=True).start()
try:
    stage.move_to(50.0)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_keyboard_interrupt_during_a_move_stops_the_stage(lab, nameserver, daemon_factory):
    import subprocess
    import sys

    daemon_factory({"t.stage": "pyrolab_jupyter.instruments.sim:Stage"}, nameserver.address)
    stage = lab.connect("t.stage")
    out = subprocess.run([sys.executable, "-c", _CTRL_C, nameserver.address], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "interrupted", out.stderr
    assert "interrupted: called stop()" in out.stderr  # says what it did
    assert stage.moving is False
    where = stage.position
    assert 0.0 < where < 10.0  # stopped soon after it started (1 mm/s toward 50 mm)
    time.sleep(0.3)
    assert stage.position == where


def test_submit_returns_a_future_and_cancel_stops_the_running_call(lab, nameserver, daemon_factory):
    from concurrent.futures import CancelledError, wait

    daemon_factory({"t.stage": "pyrolab_jupyter.instruments.sim:Stage"}, nameserver.address)
    stage = lab.connect("t.stage", timeout=120)
    assert stage.move_to.submit(1.0).result(timeout=30) is None  # a plain completed call
    stage.velocity = 1.0
    future = stage.move_to.submit(50.0)
    wait_for(lambda: stage.moving, timeout=10)
    assert future.running() and future.cancel() is True
    assert future.cancelled() and wait([future], timeout=10).done == {future}
    with pytest.raises(CancelledError):
        future.result(timeout=1)
    wait_for(lambda: stage.moving is False, timeout=10)
    assert stage.position < 10.0
    assert future.cancel() is True  # cancelling again is harmless


def test_the_stop_action_reaches_a_busy_locked_service(lab, nameserver, daemon_factory):
    daemon_factory({"t.motor": "labservices:Motor"}, nameserver.address)
    holder = lab.connect("t.motor", timeout=60)
    other = Lab(nameserver.address).connect("t.motor")
    assert other.lock_info() is None
    with holder.lock(lease=60):
        future = holder.run.submit(30.0)  # holds the non-thread-safe service (a read would wait 30 s)
        wait_for(future.running, timeout=10)
        time.sleep(0.2)  # let it start; a halt that comes first ends it too
        import subprocess
        import sys

        script = ("import sys\nfrom pyrolab_jupyter import Lab\nm = Lab(sys.argv[1]).connect('t.motor')\n"
                  "m.halt()\ntry:\n    m.run(1)\nexcept Exception as e:\n    print(type(e).__name__)\n")
        out = subprocess.run([sys.executable, "-c", script, nameserver.address], capture_output=True, text=True,
                             timeout=60)
        assert out.stdout.strip() == "ServiceLocked", out.stderr  # anyone may stop; nothing else
        assert future.result(timeout=10) < 1.0  # run() ended early (30 s would reach 15 mm)
        assert holder.stop_count() == 1


def test_completion_and_help_never_read_the_instrument(lab, nameserver, daemon_factory):
    from IPython.core.completer import IPCompleter, provisionalcompleter
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.oinspect import Inspector

    daemon_factory({"t.sensors": "labservices:Sensors"}, nameserver.address)
    slow = lab.connect("t.sensors")
    assert slow.reads() == 0
    for jedi in (False, True):
        completer = IPCompleter(namespace={"slow": slow}, global_namespace={}, use_jedi=jedi,
                                disable_matchers=["IPCompleter.magic_matcher"])  # no shell here
        with provisionalcompleter():
            found = {c.text.lstrip(".") for c in completer.completions("slow.", 5)}
            assert {"good", "broken", "reads", "lock"} <= found, found
            assert "good" in {c.text.lstrip(".") for c in completer.completions("slow.go", 7)}
    assert "good" in dir(slow) and "__time__" not in dir(slow)
    prop = InteractiveShell._getattr_property(slow, "good")  # what `slow.good?` inspects
    info = Inspector(theme_name="nocolor").info(prop, "slow.good")
    assert "A sensor that works." in info["docstring"] and "0 to 10 V" in info["docstring"]
    method = Inspector(theme_name="nocolor").info(slow.reads, "slow.reads")
    assert method["definition"].startswith("slow.reads(") and "call_def" not in {k for k, v in method.items() if v}
    assert slow.reads() == 0  # neither Tab nor ? read a property
    assert slow.good == 1.5 and slow.reads() == 1


def test_remote_tracebacks_end_at_the_daemons_frame_not_in_pyro5(lab, nameserver, daemon_factory):
    import traceback

    from pyrolab_jupyter.errors import RemoteError

    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    for call, kind in ((remote.fail_custom, RemoteError), (remote.fail_builtin, KeyError)):
        with pytest.raises(kind) as caught:
            call()
        text = "".join(traceback.format_exception(caught.value))
        assert "Pyro5" not in text and "if you see this" not in text, text
        assert "labservices.py" in text and f"in {call.__name__}" in text  # the service's own frame
        assert text.rstrip().splitlines()[-1].startswith("(the full daemon-side traceback")
        assert call.__name__ in caught.value.remote_traceback  # kept whole for whoever needs it


def test_lock_info_reads_for_people_and_read_only_properties_refuse_a_set(lab, nameserver, daemon_factory):
    daemon_factory({"t.laser": "pyrolab_jupyter.instruments.sim:Laser"}, nameserver.address)
    laser = lab.connect("t.laser")
    with laser.lock(lease=600):
        info = laser.lock_info()
        assert info["since_text"] == "just now" and info["expires_text"].startswith("until ")
        assert info["holder"] and info["mine"] is True
    with pytest.raises(AttributeError, match="t.laser.max_power is read-only"):
        laser.max_power = 3.0
    laser.power = 2.0
    assert laser.power == 2.0 and type(laser).power.__doc__.startswith("Power setpoint")


_CTRL_C_LOCKED = """
import signal, sys, threading, time
from pyrolab_jupyter import Lab
dummy = Lab(sys.argv[1]).connect("t.dummy")
dummy.lock(lease=60)
main = threading.main_thread().ident
threading.Timer(0.5, lambda: signal.pthread_kill(main, signal.SIGINT)).start()
try:
    dummy.sleep(1.5)  # a service without a stop action
except KeyboardInterrupt:
    time.sleep(2.5)  # the daemon notices the interrupted connection when the call ends
    print("interrupted, lock mine:", dummy.lock_info()["mine"], flush=True)
"""


def test_an_interrupted_call_keeps_the_lock_of_its_process(lab, nameserver, daemon_factory):
    import subprocess
    import sys

    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    out = subprocess.run([sys.executable, "-c", _CTRL_C_LOCKED, nameserver.address], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "interrupted, lock mine: True", out.stderr


def test_lab_merges_several_nameservers_the_online_one_wins(nameserver_factory, daemon_factory):
    from Pyro5.api import Proxy

    live, stale = nameserver_factory(), nameserver_factory()
    daemon_factory({"t.moved": "labservices:Dummy"}, live.address)
    daemon_factory({"t.only_stale": "labservices:Dummy"}, stale.address)
    dead = f"PYRO:t.moved@127.0.0.1:{free_port()}"  # where it was before it moved: nobody answers there
    with Proxy(stale.uri) as ns:
        ns.register("t.moved", dead)
    wait_for(lambda: Lab(stale.address).entry("t.moved")["status"] == "offline")
    lab = Lab([stale.address, live.address])
    assert repr(lab) == f"Lab({[stale.address, live.address]!r})"
    rows = {r["name"]: r for r in lab.services()}
    assert set(rows) == {"t.moved", "t.only_stale"}
    moved = rows["t.moved"]
    assert moved["status"] == "online" and moved["uri"] != dead
    assert moved["sources"] == [stale.address, live.address]
    assert f"{stale.address} (offline at {dead})" in moved["note"] and moved["note"].endswith(f"{live.address}'s")
    assert rows["t.only_stale"]["sources"] == [stale.address] and rows["t.only_stale"]["note"] == ""
    assert lab.names() == ["t.moved", "t.only_stale"]
    assert lab.connect("t.moved").echo(1) == 1  # the online one, though the first nameserver lists a dead one
    with pytest.raises(UnknownService, match="none of the nameservers"):
        lab.connect("t.nowhere")


def test_lab_with_one_nameserver_down_still_works_and_all_down_says_which(nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    down = f"127.0.0.1:{free_port()}"
    lab = Lab([down, nameserver.address], timeout=2)
    assert lab.answers()
    assert [r["name"] for r in lab.services()] == ["t.dummy"]
    assert lab.connect("t.dummy").echo("x") == "x"
    other_down = f"127.0.0.1:{free_port()}"
    nobody = Lab([down, other_down], timeout=1)
    assert not nobody.answers()
    with pytest.raises(NameserverUnreachable, match=f"none of the nameservers {down}, {other_down}"):
        nobody.services()
    with pytest.raises(ValueError, match="at least one"):
        Lab([])
