"""A PyMeasure instrument on pyvisa-sim, served in a real process: validators and units in the description."""

from __future__ import annotations

import json

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


def _drive_source(remote) -> None:
    """The driver's own test, against whatever answers at ASRL1::INSTR: set and read back."""
    for volts in (2.5, -1.0):
        remote.voltage = volts
        assert remote.voltage == volts
    remote.output_enabled = True
    assert remote.output_enabled is True


def test_a_pymeasure_driver_is_recorded_and_replayed_for_ci(nameserver, daemon_factory, lab, tmp_path):
    from pyrolab_jupyter.cli import main

    session, device = tmp_path / "source.jsonl", tmp_path / "source.yaml"
    spec = {"class": "adapted:SimSource", "adapter": "pymeasure", "record": str(session)}
    recorded = daemon_factory({"pm.source": spec}, nameserver.address)
    remote = lab.connect("pm.source", timeout=20)
    _drive_source(remote)
    remote.disconnect()
    recorded.stop()
    exchanges = [json.loads(line) for line in session.read_text().splitlines()]
    assert {e["resource"] for e in exchanges} == {"ASRL1::INSTR"}
    assert [e.get("command") for e in exchanges if e["kind"] == "write"][:2] == ["VOLT 2.5", "VOLT?"]

    assert main(["replay", str(session), "-o", str(device)]) == 0
    replayed = {"class": "adapted:SimSource", "adapter": "pymeasure", "args": {"visa_library": f"{device}@sim"}}
    daemon_factory({"pm.source": replayed}, nameserver.address)
    remote = lab.connect("pm.source", timeout=20)
    try:
        _drive_source(remote)  # the same test passes against what the instrument said
    finally:
        remote.disconnect()


def test_a_driver_pymeasure_ships_is_described_from_its_validators():
    from pymeasure.adapters import ProtocolAdapter
    from pymeasure.instruments.keithley import Keithley2400

    from pyrolab_jupyter.adapters import adapt
    from pyrolab_jupyter.core.service import schema_of

    # PyMeasure's own test adapter: the one message the driver sends when it is made, nothing else
    keithley = Keithley2400(ProtocolAdapter([(b":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS", None)]))
    service = adapt(keithley)
    props = service.describe()["properties"]
    assert props["source_voltage"]["schema"] == {"type": "number", "minimum": -210, "maximum": 210, "x-unit": "V"}
    assert props["compliance_current"]["schema"]["maximum"] == 1.05
    assert props["source_mode"]["schema"]["enum"] == ["current", "voltage"]
    assert props["current"]["readonly"] is True and props["current"]["schema"]["x-unit"] == "A"
    assert "GUAR" in props["output_off_state"]["schema"]["enum"]
    with pytest.raises(InvalidArgument, match="above the maximum 210"):
        schema_of(type(service)).properties["source_voltage"].validate(500)
