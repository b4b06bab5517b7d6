"""The plain-object adapter, in real processes: a class written without pyrolab_jupyter, served and used."""

from __future__ import annotations

import pytest

from pyrolab_jupyter.adapters import adapt
from pyrolab_jupyter.core.service import Service
from pyrolab_jupyter.errors import InvalidArgument

pytestmark = [
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore:metadata .* was set from the constructor:DeprecationWarning"),
]


def test_adapt_returns_a_service_and_keeps_a_native_one():
    from adapted import PlainSupply

    service = adapt(PlainSupply())
    assert isinstance(service, Service)
    assert set(service.describe()["methods"]) == {"set_voltage", "set_mode", "scale"}
    native = adapt(service)
    assert native is service


def test_plain_class_served_in_its_own_process(nameserver, daemon_factory, lab):
    daemon_factory({"bench.supply": {"class": "adapted:PlainSupply", "args": {"volts": 2.0}}}, nameserver.address)
    remote = lab.connect("bench.supply")
    try:
        description = remote.describe()
        assert description["class"] == "adapted:PlainSupply"
        volts = description["methods"]["set_voltage"]["parameters"]["properties"]["volts"]
        assert (volts["minimum"], volts["maximum"], volts["x-unit"]) == (0, 5, "V")
        assert description["methods"]["set_mode"]["parameters"]["properties"]["mode"]["enum"] == ["cv", "cc"]
        assert description["methods"]["scale"]["parameters"]["properties"]["value"] == {}  # untyped
        assert description["properties"]["voltage"]["schema"]["x-unit"] == "V"
        assert description["properties"]["label"]["readonly"] is False  # a plain attribute

        assert remote.voltage == 2.0
        remote.voltage = 3.5
        assert remote.voltage == 3.5
        assert remote.set_voltage(4.0) == 4.0
        assert remote.scale("ab") == "abab"
        calls = remote.driver_calls
        with pytest.raises(InvalidArgument, match=r"volts=9\.0 is above the maximum 5 \(V\)"):
            remote.set_voltage(9.0)
        with pytest.raises(InvalidArgument, match="voltage"):
            remote.voltage = -1
        with pytest.raises(InvalidArgument, match="not one of"):
            remote.set_mode("turbo")
        assert remote.driver_calls == calls  # refused on the daemon: the driver never saw them
        assert remote.voltage == 4.0
        assert "Set the output voltage." in remote.set_voltage.__doc__
    finally:
        remote.disconnect()


def test_a_panel_for_a_plain_object(nameserver, daemon_factory, lab):
    from pyrolab_jupyter.jupyter import panel

    daemon_factory({"bench.supply": "adapted:PlainSupply"}, nameserver.address)
    remote = lab.connect("bench.supply")
    shown = panel(remote)
    try:
        assert set(shown.properties) == {"voltage", "label", "driver_calls"}
        assert set(shown.methods) == {"set_voltage", "set_mode", "scale"}
        assert shown.properties["voltage"].widget is not None
    finally:
        shown.close()
        remote.disconnect()


def test_start_daemon_with_an_instance_in_this_process(nameserver):
    from adapted import PlainSupply

    from pyrolab_jupyter import Lab, start_daemon

    supply = PlainSupply()
    handle = start_daemon({"bench.local": supply}, nameserver=nameserver.address)
    try:
        remote = Lab(nameserver.address).connect("bench.local")
        remote.set_voltage(1.5)
        assert supply.voltage == 1.5  # the very object given was driven
        remote.disconnect()
    finally:
        handle.stop()
