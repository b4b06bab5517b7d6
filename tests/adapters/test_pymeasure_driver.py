"""A PyMeasure instrument on pyvisa-sim, served in a real process: validators and units in the description."""

from __future__ import annotations

import pytest

from pyrolab_jupyter.adapters.pymeasure_driver import unit_from_doc
from pyrolab_jupyter.errors import InvalidArgument

pytest.importorskip("pymeasure")
pytest.importorskip("pyvisa_sim")

pytestmark = [
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore:metadata .* was set from the constructor:DeprecationWarning"),
]


@pytest.mark.parametrize(("doc", "unit"), [
    ("Output voltage in V.", "V"), ("The frequency (Hz) of the sweep", "Hz"), ("Current in amps", "A"),
    ("Set in the range given", None), ("", None),
])
def test_units_read_from_documentation(doc, unit):
    assert unit_from_doc(doc) == unit


def test_pymeasure_instrument_served(nameserver, daemon_factory, lab):
    from pyrolab_jupyter.jupyter import panel

    daemon_factory({"pm.source": {"class": "adapted:SimSource", "adapter": "pymeasure"}}, nameserver.address)
    remote = lab.connect("pm.source", timeout=20)
    try:
        props = remote.describe()["properties"]
        voltage = props["voltage"]["schema"]
        assert (voltage["minimum"], voltage["maximum"], voltage["x-unit"]) == (-10, 10, "V")
        assert props["output_enabled"]["schema"]["enum"] == [False, True]
        assert props["mode"]["schema"]["enum"] == ["FIX", "LIST", "SWE"]
        assert props["mode"]["schema"]["writeOnly"] is True
        assert props["identity"]["readonly"] is True

        remote.voltage = 2.5
        assert remote.voltage == 2.5  # read back from the simulated device
        remote.output_enabled = True
        assert remote.output_enabled is True
        remote.mode = "SWE"
        assert remote.mode == "SWE"  # a setting reads back the last value set
        with pytest.raises(InvalidArgument, match=r"voltage=20 is above the maximum 10"):
            remote.voltage = 20  # PyMeasure's strict_range would say otherwise: ours refused it first
        with pytest.raises(InvalidArgument, match="not one of"):
            remote.mode = "RANDOM"
        assert remote.voltage == 2.5
        remote.zero()
        assert remote.voltage == 0
        channel = remote.describe()["properties"]["output_a.voltage"]["schema"]
        assert (channel["minimum"], channel["maximum"], channel["x-unit"]) == (0, 5, "V")
        remote.output_a.voltage = 4.5  # a channel, under a dotted name
        assert remote.output_a.voltage == 4.5
        with pytest.raises(InvalidArgument, match="above the maximum 5"):
            remote.output_a.voltage = 6
        shown = panel(remote)
        try:
            assert {"voltage", "output_enabled", "mode"} <= set(shown.properties)
            assert "zero" in shown.methods
        finally:
            shown.close()
    finally:
        remote.disconnect()
