"""RemoteService: timeouts, reconnect after a daemon restart, offline errors, help and completion."""

from __future__ import annotations

import inspect
import time

import pytest
from conftest import free_port, wait_for

from pyrolab_jupyter import Lab
from pyrolab_jupyter.errors import CallTimeout, ServiceOffline, UnknownService

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
    remote.announce(33.0)  # a value the service announces by itself
    wait_for(lambda: ("power", 12.0) in seen and ("power", 33.0) in seen, timeout=5)
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
