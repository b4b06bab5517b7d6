"""Labs not run by pyrolab-jupyter: a stock Pyro5 nameserver and daemon, PyroLab 0.5's own nameserver.

Entries such a nameserver lists are ``unknown`` (it checks nothing), and an object
without a description is described from Pyro5's metadata, so calls, help() and a
panel with untyped inputs work.
"""

from __future__ import annotations

import pytest
from conftest import free_port, wait_for

from pyrolab_jupyter import Lab
from pyrolab_jupyter.core.foreign import is_foreign, metadata_description
from pyrolab_jupyter.errors import PyroLabError

pytestmark = [
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore:metadata .* was set from the constructor:DeprecationWarning"),
]

STOCK_NAMESERVER = """
import sys, threading
import Pyro5.nameserver
uri, daemon, _ = Pyro5.nameserver.start_ns(host="127.0.0.1", port=int(sys.argv[1]), enableBroadcast=False)
threading.Thread(target=daemon.requestLoop, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
daemon.shutdown()
"""

PYROLAB_NAMESERVER = """
import sys, threading
from pyrolab.configure import NameServerConfiguration
from pyrolab.nameserver import start_ns
uri, daemon, _ = start_ns(NameServerConfiguration(host="127.0.0.1", ns_port=int(sys.argv[1])))
threading.Thread(target=daemon.requestLoop, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
daemon.shutdown()
"""

STOCK_DAEMON = """
import sys, threading
import Pyro5.api

@Pyro5.api.expose
class Counter:
    '''Counts, written for plain Pyro5.'''
    def __init__(self):
        self._count = 0
    @property
    def count(self):
        return self._count
    @count.setter
    def count(self, value):
        self._count = value
    def add(self, n, times=1):
        self._count += n * times
        return self._count
    @Pyro5.api.oneway
    def poke(self):
        pass

daemon = Pyro5.api.Daemon(host="127.0.0.1")
uri = daemon.register(Counter(), "plain.counter")
if len(sys.argv) > 2:
    from pyrolab.drivers.sample import SampleService
    daemon.register(SampleService(), "pyrolab.sample")
    sample = daemon.uriFor("pyrolab.sample")
ns = Pyro5.api.locate_ns("127.0.0.1", int(sys.argv[1]))
ns.register("plain.counter", uri)
if len(sys.argv) > 2:
    ns.register("pyrolab.sample", sample)
threading.Thread(target=daemon.requestLoop, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
daemon.shutdown()
"""


def test_a_description_from_metadata_is_untyped_and_marked():
    described = metadata_description("x", {"methods": {"add", "_hidden"}, "attrs": {"count"}, "oneway": {"poke"}})
    assert is_foreign(described)
    assert set(described["methods"]) == {"add", "poke"} and described["methods"]["poke"]["oneway"] is True
    assert described["properties"]["count"]["schema"] == {}


def test_stock_pyro5_nameserver_and_daemon(python_child):
    port = free_port()
    assert python_child(STOCK_NAMESERVER, str(port)) == "ready"
    assert python_child(STOCK_DAEMON, str(port)) == "ready"
    lab = Lab(f"127.0.0.1:{port}", timeout=10)
    rows = lab.services()
    assert [(r["name"], r["status"]) for r in rows] == [("plain.counter", "unknown")]

    counter = lab.connect("plain.counter")
    try:
        described = counter.describe()
        assert set(described["methods"]) == {"add", "poke"} and set(described["properties"]) == {"count"}
        assert counter.add(2, times=3) == 6
        counter.count = 10
        assert counter.count == 10
        assert counter.read_properties()["count"] == 10
        assert "add(*args, **kwargs)" in counter.__doc__
        with pytest.raises(PyroLabError, match="plain Pyro5 object"):
            counter.lock()
    finally:
        counter.disconnect()


def test_a_panel_with_untyped_inputs_for_a_stock_pyro5_object(python_child):
    from pyrolab_jupyter.jupyter import panel

    port = free_port()
    assert python_child(STOCK_NAMESERVER, str(port)) == "ready"
    assert python_child(STOCK_DAEMON, str(port)) == "ready"
    counter = Lab(f"127.0.0.1:{port}").connect("plain.counter")
    shown = panel(counter, poll_interval=0.1)
    try:
        assert shown.mode == "poll"  # a stock object pushes nothing
        assert shown.properties["count"].last_value == 0
        shown.methods["add"].controls["args"].set([5])
        shown.call("add")
        wait_for(lambda: shown.methods["add"].calls == 1)
        assert counter.count == 5
        wait_for(lambda: shown.properties["count"].last_value == 5)
    finally:
        shown.close()
        counter.disconnect()


def test_pyrolab_nameserver_lists_unknown_and_its_services_connect(python_child):
    pytest.importorskip("pyrolab")
    port = free_port()
    assert python_child(PYROLAB_NAMESERVER, str(port)) == "ready"
    assert python_child(STOCK_DAEMON, str(port), "with-pyrolab-sample") == "ready"
    lab = Lab(f"127.0.0.1:{port}", timeout=10)
    assert {(r["name"], r["status"]) for r in lab.services()} == {("plain.counter", "unknown"),
                                                                  ("pyrolab.sample", "unknown")}
    sample = lab.connect("pyrolab.sample")
    try:
        assert "echo" in sample.describe()["methods"]
        assert sample.echo("hello") == "SERVER RECEIVED: hello"
        sample.attribute = "x"
        assert sample.attribute == "x"
    finally:
        sample.disconnect()


def test_a_stock_daemon_registered_with_our_nameserver_is_checked(python_child, nameserver):
    assert python_child(STOCK_DAEMON, str(nameserver.port)) == "ready"
    lab = Lab(nameserver.address)
    wait_for(lambda: lab.entry("plain.counter")["status"] == "online")  # our nameserver pings it
    counter = lab.connect("plain.counter")
    try:
        assert counter.add(1) == 1
    finally:
        counter.disconnect()
