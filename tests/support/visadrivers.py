"""A driver and its own test, run against pyvisa-sim's stock device and against a replay of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest

from pyrolab_jupyter.core.service import Range, Unit, expose
from pyrolab_jupyter.instruments.visa import VisaInstrument

SCPI_DEVICE = "GPIB0::9::INSTR"  # pyvisa-sim "device 2": *IDN?, :VOLT:IMM:AMPL, "\n" both ways
SERIAL_DEVICE = "ASRL1::INSTR"  # pyvisa-sim "device 1": ?IDN, expects "\r\n" after each query
IDN = "SCPI,MOCK,VERSION_1.0"


class PowerSupply(VisaInstrument):
    """The driver example of the visa module's docstring, on pyvisa-sim's SCPI device."""

    @expose
    @property
    def voltage(self) -> Annotated[float, Range(1, 6), Unit("V")]:
        """Output voltage setpoint."""
        return float(self.query(":VOLT:IMM:AMPL?"))

    @voltage.setter
    def voltage(self, volts: Annotated[float, Range(1, 6), Unit("V")]) -> None:
        self.write(f":VOLT:IMM:AMPL {volts:.3f}")

    @expose
    @property
    def output(self) -> bool:
        """Whether the output is on."""
        return self.query("OUTP?") == "1"

    @output.setter
    def output(self, on: bool) -> None:
        self.write(f"OUTP {int(on)}")


def exercise_supply(backend: str, record: str | Path | None = None) -> None:
    """The driver's own test: what it sends and what it must get back, state included."""
    supply = PowerSupply(SCPI_DEVICE, backend=backend, timeout_ms=100, record=record)
    try:
        assert supply.identify() == IDN
        supply.voltage = 4.25
        assert supply.voltage == 4.25
        supply.voltage = 1.5
        assert supply.voltage == 1.5
        assert supply.query(":VOLT:IMM:AMPL?") == "+1.50000000E+00"  # the instrument's own format
        supply.output = False  # pyvisa-sim keeps a device's state for the whole process: start known
        assert supply.output is False
        supply.output = True
        assert supply.output is True
        supply.output = False
        supply.write("*IDN?")  # a write never reads: the reply waits for read()
        assert supply.read() == IDN
        supply.write("*RST")  # no reply
        with pytest.raises(TimeoutError, match="no reply within 100 ms"):
            supply.read()
        with pytest.raises(TimeoutError):
            supply.query("NOT:A:COMMAND?")
        assert supply.identify() == IDN  # a timeout leaves the conversation usable
    finally:
        supply.close()


def exercise_serial(backend: str, record: str | Path | None = None) -> None:
    """A serial device that needs "\\r\\n" after each command and fails without it."""
    serial = VisaInstrument(SERIAL_DEVICE, backend=backend, timeout_ms=100, write_termination="\r\n",
                            record=record)
    try:
        assert serial.query("?IDN") == "LSG Serial #1234"
        serial.write_termination = "\n"
        with pytest.raises(TimeoutError):
            serial.query("?IDN")
    finally:
        serial.close()
