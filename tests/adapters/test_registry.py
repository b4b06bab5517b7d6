"""The entry-point group: a plug-in installed from a tiny package in the test suite is consulted first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyrolab_jupyter.adapters import ENTRY_POINT_GROUP, adapt, adapters, find_adapter
from pyrolab_jupyter.errors import ConfigError, InvalidArgument

pytestmark = pytest.mark.network

EP_PACKAGE = Path(__file__).with_name("ep_pkg")


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory) -> Path:
    """The plug-in pip-installed (offline, no build isolation) into a folder of its own, put on the path."""
    target = tmp_path_factory.mktemp("plugin")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(EP_PACKAGE)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("pyrolab_test_adapter-*.dist-info/entry_points.txt"))
    return target


@pytest.fixture
def plugin(plugin_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_dir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")]))
    yield plugin_dir
    for name in [m for m in sys.modules if m.startswith("pyrolab_test_adapter")]:
        del sys.modules[name]


def test_builtin_order_without_plugins():
    names = [name for name, _ in adapters()]
    assert names[-4:] == ["qcodes", "pymeasure", "pyrolab", "plain"]


def test_entry_point_adapters_come_first_and_plain_last(plugin):
    names = [name for name, _ in adapters()]
    assert set(names[:2]) == {"thermo", "broken"} and names[-1] == "plain"
    from pyrolab_test_adapter import Thermometer

    assert find_adapter(Thermometer())[0] == "thermo"  # the plain adapter would claim it too
    assert find_adapter(Thermometer(), "plain")[0] == "plain"
    assert type(adapt(Thermometer())).__name__ == "ThermometerService"


def test_plugin_adapter_serves_in_a_real_process(plugin, nameserver, daemon_factory, lab):
    daemon_factory({"cryo.thermo": {"class": "pyrolab_test_adapter:Thermometer", "args": {"kelvin": 4.2}}},
                   nameserver.address)
    remote = lab.connect("cryo.thermo")
    try:
        described = remote.describe()
        assert described["description"] == "Served by the test plug-in."
        assert described["methods"]["heat_to"]["parameters"]["properties"]["kelvin"]["maximum"] == 300
        assert remote.temperature == 4.2
        remote.heat_to(10.0)
        assert remote.temperature == 10.0
        with pytest.raises(InvalidArgument, match="above the maximum 300"):
            remote.heat_to(1000.0)
        assert remote.heater_writes == 1
    finally:
        remote.disconnect()


def test_an_unknown_adapter_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=rf"no adapter named 'qcodez'.*plain.*{ENTRY_POINT_GROUP}"):
        find_adapter(object(), "qcodez")


def test_a_missing_extra_is_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "qcodes" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'pyrolab-jupyter\[qcodes\]'"):
        adapt(object(), "qcodes")


def test_an_adapter_returning_no_service_is_refused(plugin):
    from pyrolab_test_adapter import Unservable

    with pytest.raises(ConfigError, match="adapter 'broken' returned Unservable, not a pyrolab_jupyter.Service"):
        adapt(Unservable())
