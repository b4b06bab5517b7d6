"""Record a pyvisa-sim instrument, replay the recording as a pyvisa-sim device, run the driver's test against it."""

from __future__ import annotations

import importlib.resources
import json

import pytest
import yaml

pytest.importorskip("pyvisa_sim")

from visadrivers import SCPI_DEVICE, SERIAL_DEVICE, exercise_serial, exercise_supply

from pyrolab_jupyter.cli import main
from pyrolab_jupyter.errors import ConfigError
from pyrolab_jupyter.instruments.replay import device_document, read_sessions, write_device
from pyrolab_jupyter.instruments.visa import VisaInstrument


@pytest.fixture
def stock(tmp_path):
    """pyvisa-sim's own instruments, in a private copy: pyvisa-sim keeps a device's state (even a
    half-sent command) for the whole process, and the serial test leaves one behind on purpose."""
    copy = tmp_path / "pyvisa-sim-default.yaml"
    copy.write_text((importlib.resources.files("pyvisa_sim") / "default.yaml").read_text())
    return f"{copy}@sim"


def test_record_replay_loop_the_driver_test_passes_against_the_replay(tmp_path, capsys, stock):
    session = tmp_path / "session.jsonl"
    exercise_supply(stock, record=session)  # against pyvisa-sim's own device, recorded
    exercise_serial(stock, record=session)  # a second resource in the same recording
    device = tmp_path / "device.yaml"
    assert main(["replay", str(session), "-o", str(device)]) == 0
    out, err = capsys.readouterr()
    assert f"wrote {device}: {SCPI_DEVICE}" in out and SERIAL_DEVICE in out
    assert "terminations changed" in err  # the serial test switches them on purpose
    exercise_supply(f"{device}@sim")  # the same test, now against what the instrument said
    exercise_serial(f"{device}@sim")
    document = yaml.safe_load(device.read_text())
    assert set(document["resources"]) == {SCPI_DEVICE, SERIAL_DEVICE}
    supply = document["devices"][document["resources"][SCPI_DEVICE]["device"]]
    voltage = supply["properties"]["volt_imm_ampl"]
    assert voltage["getter"] == {"q": ":VOLT:IMM:AMPL?", "r": "{:+.8E}"} and voltage["specs"]["type"] == "float"
    assert supply["properties"]["outp"]["getter"]["r"] == "{:d}"
    assert supply["eom"] == {"GPIB INSTR": {"q": "\n", "r": "\n"}}
    assert {"q": "*RST"} in supply["dialogues"]
    assert {"q": "NOT:A:COMMAND?"} in supply["dialogues"]  # never answered: still no answer


def test_the_replay_is_stateful_where_the_dialogue_shows_state(tmp_path, stock):
    session = tmp_path / "session.jsonl"
    with_record = VisaInstrument(SCPI_DEVICE, backend=stock, timeout_ms=100, record=session)
    try:
        start = with_record.query(":VOLT:IMM:AMPL?")
        assert start == "+1.00000000E+00"  # the stock device's default
        with_record.write(":VOLT:IMM:AMPL 2.000")
        with_record.query(":VOLT:IMM:AMPL?")
    finally:
        with_record.close()
    device = tmp_path / "device.yaml"
    write_device([session], device)
    replayed = VisaInstrument(SCPI_DEVICE, backend=f"{device}@sim", timeout_ms=100)
    try:
        assert replayed.query(":VOLT:IMM:AMPL?") == start  # starts where the recording started
        replayed.write(":VOLT:IMM:AMPL 5.5")  # a value never recorded: state, not a canned answer
        assert replayed.query(":VOLT:IMM:AMPL?") == "+5.50000000E+00"
    finally:
        replayed.close()


def _records(*exchanges):
    return [{"resource": SCPI_DEVICE, "kind": kind, **({"command": c} if c is not None else {}),
             **({"reply": r} if r is not None else {})} for kind, c, r in exchanges]


def test_what_cannot_be_replayed_exactly_is_noted():
    replay = device_document(_records(
        ("query", "MEAS?", "1.0"), ("query", "MEAS?", "1.1"),  # a reading that changes by itself
        ("write", "TEMP 20", None), ("query", "TEMP?", "20.5"),  # answers other than what was set
        ("read", None, "stray"),
    ))
    notes = "\n".join(replay.notes)
    assert "'MEAS?' was answered differently; the replay gives the last answer '1.1'" in notes
    assert "TEMP? answered 1 time(s) other than the last value set" in notes
    assert "a read with no command before it was left out" in notes


def test_bad_recordings_are_refused_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"resource": SCPI_DEVICE, "kind": "query", "command": "*IDN?", "reply": "x"})
                   + "\nnot json\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl, line 2: not JSON"):
        read_sessions([bad])
    bad.write_text('{"kind": "shout"}\n')
    with pytest.raises(ConfigError, match=r"line 1: expected an object with 'resource' and 'kind'"):
        read_sessions([bad])
    bad.write_text("")
    with pytest.raises(ConfigError, match="no exchange recorded"):
        read_sessions([bad])
    weird = _records(("query", "*IDN?", "x"))
    weird[0]["resource"] = "not-a-resource"
    with pytest.raises(ConfigError, match="not a VISA resource name"):
        device_document(weird)
    assert main(["replay", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "d.yaml")]) == 1
