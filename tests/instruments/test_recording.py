"""SessionRecorder: every exchange of a PyVISA conversation as one JSON line, the conversation unchanged."""

from __future__ import annotations

import json

import pytest

pyvisa = pytest.importorskip("pyvisa")
pytest.importorskip("pyvisa_sim")

from visadrivers import IDN, SCPI_DEVICE

from pyrolab_jupyter.instruments.recording import SessionRecorder
from pyrolab_jupyter.instruments.visa import VisaInstrument


def test_record_writes_every_exchange_with_reply_and_timing(tmp_path):
    session = tmp_path / "session.jsonl"
    scpi = VisaInstrument(SCPI_DEVICE, backend="@sim", timeout_ms=100, record=session)
    try:
        scpi.query("*IDN?")
        scpi.write(":VOLT:IMM:AMPL 2.5")
        scpi.write("*IDN?")
        scpi.read()
        with pytest.raises(TimeoutError):
            scpi.query("NOPE?")
    finally:
        scpi.close()
    records = [json.loads(line) for line in session.read_text().splitlines()]
    assert [(r["kind"], r.get("command"), r.get("reply"), r.get("error")) for r in records] == [
        ("query", "*IDN?", "SCPI,MOCK,VERSION_1.0", None),
        ("write", ":VOLT:IMM:AMPL 2.5", None, None),
        ("write", "*IDN?", None, None),
        ("read", None, "SCPI,MOCK,VERSION_1.0", None),
        ("query", "NOPE?", None, "timeout"),
    ]
    assert all(r["resource"] == SCPI_DEVICE and r["seconds"] >= 0 and r["time"] > 0 for r in records)
    assert records[0]["write_termination"] == "\n" and records[-1]["seconds"] >= 0.05


def test_record_to_an_unwritable_place_says_where(tmp_path):
    with pytest.raises(OSError, match=r"cannot record 'GPIB0::9::INSTR' to .*nowhere"):
        VisaInstrument(SCPI_DEVICE, backend="@sim", record=tmp_path / "nowhere" / "s.jsonl")


def test_any_pyvisa_resource_can_be_recorded(tmp_path):
    """What an adapter of a PyVISA-based driver (a QCoDeS visa_handle) does with its handle."""
    session = tmp_path / "raw.jsonl"
    handle = pyvisa.ResourceManager("@sim").open_resource(SCPI_DEVICE, read_termination="\n",
                                                           write_termination="\n")
    recorded = SessionRecorder(handle, session)
    try:
        assert recorded.query("*IDN?") == IDN
        recorded.timeout = 50  # everything else passes through to the resource
        assert handle.timeout == 50 and recorded.resource_name == SCPI_DEVICE
        with pytest.raises(pyvisa.errors.VisaIOError):  # errors are the resource's own, unchanged
            recorded.read()
    finally:
        recorded.close()
    recorded.close()  # twice is harmless
    lines = [json.loads(line) for line in session.read_text().splitlines()]
    assert [(r["kind"], r.get("reply"), r.get("error")) for r in lines] == [
        ("query", IDN, None), ("read", None, "timeout")]
