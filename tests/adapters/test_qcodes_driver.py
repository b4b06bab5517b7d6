"""QCoDeS instruments served in real processes: DummyInstrument, a channelised dummy, a VISA driver on pyvisa-sim."""

from __future__ import annotations

import json

import pytest

from pyrolab_jupyter.errors import ConfigError, InvalidArgument

pytest.importorskip("qcodes")

pytestmark = [
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore:metadata .* was set from the constructor:DeprecationWarning"),
    pytest.mark.timeout(180),  # qcodes is slow to import in a loaded child
]

DUMMY = "qcodes.instrument_drivers.mock_instruments:DummyInstrument"
CHANNELS = "qcodes.instrument_drivers.mock_instruments:DummyChannelInstrument"
GS200 = "qcodes.instrument_drivers.yokogawa:YokogawaGS200"


def test_dummy_instrument_parameters_are_validated_properties(nameserver, daemon_factory, lab):
    daemon_factory({"q.dac": {"class": DUMMY, "args": {"name": "dac", "gates": ["ch1", "ch2"]},
                              "adapter": "qcodes"}}, nameserver.address)
    remote = lab.connect("q.dac", timeout=30)
    try:
        described = remote.describe()
        ch1 = described["properties"]["ch1"]
        assert ch1["schema"]["x-unit"] == "V"
        assert (ch1["schema"]["minimum"], ch1["schema"]["maximum"]) == (-800, 400)
        assert ch1["schema"]["title"] == "Gate ch1"
        remote.ch1 = 12.5
        assert remote.ch1 == 12.5
        with pytest.raises(InvalidArgument, match=r"ch1=1000 is above the maximum 400"):
            remote.ch1 = 1000  # our message: refused on the daemon before QCoDeS' own check
        assert remote.ch1 == 12.5
        snapshot = remote.snapshot()
        assert snapshot["parameters"]["ch1"]["value"] == 12.5
        assert described["methods"]["snapshot"]["readonly"] is True
    finally:
        remote.disconnect()


def test_channels_are_served_under_dotted_names(nameserver, daemon_factory, lab):
    from pyrolab_jupyter.jupyter import panel

    daemon_factory({"q.chans": {"class": CHANNELS, "args": {"name": "chans"}}}, nameserver.address)
    remote = lab.connect("q.chans", timeout=30)
    try:
        described = remote.describe()
        temperature = described["properties"]["A.temperature"]["schema"]
        assert (temperature["x-unit"], temperature["minimum"], temperature["maximum"]) == ("K", 0, 300)
        assert "B.log_my_name" in described["methods"]
        remote.A.temperature = 42.0
        assert remote.A.temperature == 42.0
        assert remote.B.temperature != 42.0 or remote.B.temperature == 42.0  # readable on its own
        with pytest.raises(InvalidArgument, match="above the maximum 300"):
            remote.A.temperature = 500
        assert getattr(remote, "A.temperature") == 42.0
        shown = panel(remote)
        try:
            assert "A.temperature" in shown.properties
        finally:
            shown.close()
    finally:
        remote.disconnect()


def test_a_visa_driver_on_the_pyvisa_sim_file_qcodes_ships(nameserver, daemon_factory, lab):
    from pyrolab_jupyter.jupyter import panel

    args = {"name": "gs200", "address": "GPIB::1::INSTR",
            "pyvisa_sim_file": "qcodes.instrument.sims:Yokogawa_GS200.yaml"}
    daemon_factory({"q.gs200": {"class": GS200, "args": args}}, nameserver.address)
    remote = lab.connect("q.gs200", timeout=30)
    try:
        props = remote.describe()["properties"]
        assert props["voltage_limit"]["schema"]["type"] == "integer"
        assert (props["voltage_limit"]["schema"]["minimum"], props["voltage_limit"]["schema"]["maximum"]) == (1, 30)
        assert props["output"]["schema"]["enum"] == ["off", "on"]
        assert props["voltage_range"]["schema"]["enum"] == [0.01, 0.1, 1.0, 10.0, 30.0]
        assert props["IDN"]["readonly"] is True
        remote.output = "on"
        assert remote.output == "on"
        with pytest.raises(InvalidArgument, match="not one of"):
            remote.output = "maybe"
        with pytest.raises(InvalidArgument, match="voltage_range"):
            remote.voltage_range = 5.0
        with pytest.raises(InvalidArgument, match=r"above the maximum 30"):
            remote.voltage_limit = 31
        shown = panel(remote)
        try:
            assert {"output", "voltage_limit"} <= set(shown.properties)
            assert "reset" in shown.methods
        finally:
            shown.close()
    finally:
        remote.disconnect()


def _drive_gs200(remote) -> None:
    """The driver's own test, against whatever answers at GPIB::1::INSTR: identity, output on, off, on."""
    assert remote.IDN["model"] == "GS200"
    for state in ("on", "off", "on"):
        remote.output = state
        assert remote.output == state


def test_a_qcodes_visa_driver_is_recorded_and_replayed_for_ci(nameserver, daemon_factory, lab, tmp_path):
    from pyrolab_jupyter.cli import main

    session, device = tmp_path / "gs200.jsonl", tmp_path / "gs200.yaml"
    args = {"name": "gs200", "address": "GPIB::1::INSTR",
            "pyvisa_sim_file": "qcodes.instrument.sims:Yokogawa_GS200.yaml"}
    recorded = daemon_factory({"q.gs200": {"class": GS200, "args": args, "record": str(session)}},
                              nameserver.address)
    remote = lab.connect("q.gs200", timeout=30)
    assert remote.describe()["class"].endswith("YokogawaGS200")  # served as the driver, not a wrapper
    _drive_gs200(remote)
    remote.disconnect()
    recorded.stop()  # closes the driver, and with it the recording
    commands = [json.loads(line).get("command") for line in session.read_text().splitlines()]
    assert {"*OPT?", "*IDN?"} <= set(commands)  # the driver's start-up dialogue is in it
    assert "OUTPUT 0" in commands and commands.count("OUTPUT?") >= 3

    assert main(["replay", str(session), "-o", str(device)]) == 0
    replayed = {"name": "gs200", "address": "GPIB::1::INSTR", "visalib": f"{device}@sim"}
    daemon_factory({"q.gs200": {"class": GS200, "args": replayed}}, nameserver.address)
    remote = lab.connect("q.gs200", timeout=30)
    try:
        _drive_gs200(remote)  # the same test passes against what the instrument said
    finally:
        remote.disconnect()


def test_record_refuses_a_driver_that_does_not_talk_through_pyvisa():
    from pyrolab_jupyter.hosting import build_service

    with pytest.raises(ConfigError, match="q.dac: 'record' needs a driver that talks through PyVISA"):
        build_service("q.dac", {"class": DUMMY, "args": {"name": "dac_rec"}, "record": "x.jsonl"})


def test_get_only_set_only_and_combined_validators():
    import qcodes.validators as vals
    from qcodes.instrument_drivers.mock_instruments import DummyInstrument

    from pyrolab_jupyter.adapters import adapt
    from pyrolab_jupyter.core.service import schema_of

    instrument = DummyInstrument("mapping_probe", gates=["g1"])
    try:
        sent = []
        instrument.add_parameter("trigger_level", set_cmd=sent.append, get_cmd=False, unit="V",
                                 vals=vals.Numbers(-5, 5))
        instrument.add_parameter("serial", get_cmd=lambda: "SN1", set_cmd=False)
        instrument.add_parameter("resolution", set_cmd=None, initial_value="AUTO",
                                 vals=vals.MultiType(vals.Numbers(0, 1), vals.Enum("AUTO")))
        instrument.add_parameter("relay", set_cmd=None, initial_value="off", vals=vals.OnOff())
        service = adapt(instrument)
        props = service.describe()["properties"]
        assert props["trigger_level"]["schema"]["writeOnly"] is True and not props["trigger_level"]["readonly"]
        assert props["serial"]["readonly"] is True
        assert props["resolution"]["schema"]["anyOf"] == [{"minimum": 0, "maximum": 1, "type": "number"},
                                                          {"const": "AUTO", "type": "string"}]
        assert props["relay"]["schema"]["enum"] == ["off", "on"]
        schema = schema_of(type(service))
        assert schema.properties["resolution"].validate("AUTO") == "AUTO"
        with pytest.raises(InvalidArgument):
            schema.properties["resolution"].validate(2)
        service.trigger_level = 1.5
        assert sent == [1.5] and service.trigger_level == 1.5  # set-only: reads the last value set
    finally:
        instrument.close()
