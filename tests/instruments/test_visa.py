"""VisaInstrument against pyvisa-sim's stock devices (``backend="@sim"``)."""

from __future__ import annotations

import json
import sys

import pytest

pytest.importorskip("pyvisa_sim")

from visadrivers import SCPI_DEVICE, SERIAL_DEVICE, PowerSupply, exercise_supply

from pyrolab_jupyter.core.errors import CallTimeout, InvalidArgument
from pyrolab_jupyter.core.service import schema_of
from pyrolab_jupyter.instruments.visa import VisaInstrument


@pytest.fixture
def scpi():
    instrument = VisaInstrument(SCPI_DEVICE, backend="@sim", timeout_ms=100)
    yield instrument
    instrument.close()


def test_query_and_identify(scpi):
    assert scpi.query("*IDN?") == "SCPI,MOCK,VERSION_1.0"
    assert scpi.identify() == "SCPI,MOCK,VERSION_1.0"
    assert scpi.resource == SCPI_DEVICE and scpi.backend == "@sim"


def test_write_never_reads_the_reply(scpi):
    scpi.write("*IDN?")  # the reply stays in the instrument's buffer...
    assert scpi.read() == "SCPI,MOCK,VERSION_1.0"  # ...until read() takes it
    scpi.write(":VOLT:IMM:AMPL 2.5")  # a setter with no reply returns at once
    assert float(scpi.query(":VOLT:IMM:AMPL?")) == 2.5


def test_timeout_is_a_timeout_error_naming_the_command(scpi):
    scpi.timeout_ms = 50
    assert scpi.timeout_ms == 50
    scpi.write("*RST")  # no reply
    with pytest.raises(TimeoutError, match=r"read\(\) on 'GPIB0::9::INSTR': no reply within 50 ms"):
        scpi.read()
    with pytest.raises(CallTimeout, match=r"query\('NOT:A:COMMAND\?'\)"):
        scpi.query("NOT:A:COMMAND?")


def test_terminations_are_configurable():
    serial = VisaInstrument(SERIAL_DEVICE, backend="@sim", timeout_ms=100, write_termination="\r\n")
    try:
        assert serial.write_termination == "\r\n" and serial.read_termination == "\n"
        assert serial.query("?IDN") == "LSG Serial #1234"
        serial.write_termination = "\n"  # the serial device no longer recognises the query
        with pytest.raises(TimeoutError):
            serial.query("?IDN")
    finally:
        serial.close()


def test_missing_resource_names_resource_backend_and_what_to_check():
    with pytest.raises(ConnectionError) as info:
        VisaInstrument("GPIB0::42::INSTR", backend="@sim")
    message = str(info.value)
    assert "'GPIB0::42::INSTR'" in message and "'@sim'" in message
    assert "list_resources()" in message and "pyvisa-shell" in message


def test_missing_backend_is_explained():
    with pytest.raises(ConnectionError, match=r"'GPIB0::9::INSTR' on backend '@nosuchlib'.*not available"):
        VisaInstrument(SCPI_DEVICE, backend="@nosuchlib")


def test_missing_pyvisa_asks_for_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvisa", None)
    with pytest.raises(ImportError, match=r"pyrolab-jupyter\[visa\]"):
        VisaInstrument(SCPI_DEVICE, backend="@sim")


def test_close_releases_the_resource(scpi):
    scpi.close()
    scpi.close()  # twice is harmless
    with pytest.raises(ConnectionError, match="closed"):
        scpi.query("*IDN?")
    again = VisaInstrument(SCPI_DEVICE, backend="@sim")
    try:
        assert again.identify() == "SCPI,MOCK,VERSION_1.0"
    finally:
        again.close()


def test_description():
    description = schema_of(VisaInstrument).description
    assert json.loads(json.dumps(description)) == description
    assert {"query", "write", "read", "identify", "reset"} <= set(description["methods"])
    assert description["methods"]["query"]["parameters"]["properties"]["command"]["type"] == "string"
    timeout = description["properties"]["timeout_ms"]["schema"]
    assert timeout["x-unit"] == "ms" and timeout["minimum"] == 1
    with pytest.raises(InvalidArgument):
        schema_of(VisaInstrument).properties["timeout_ms"].validate(0)


def test_a_driver_subclass():
    supply = PowerSupply(SCPI_DEVICE, backend="@sim", timeout_ms=100)
    try:
        supply.voltage = 4.25
        assert supply.voltage == 4.25
        schema = supply.describe()["properties"]["voltage"]["schema"]
        assert (schema["minimum"], schema["maximum"], schema["x-unit"]) == (1, 6, "V")
        with pytest.raises(InvalidArgument, match="above the maximum 6"):
            schema_of(PowerSupply).properties["voltage"].validate(7)
        assert "query" in supply.describe()["methods"]  # inherited
    finally:
        supply.close()


def test_the_driver_s_own_test():
    exercise_supply("@sim")
