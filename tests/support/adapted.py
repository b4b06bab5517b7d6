"""Foreign drivers the adapter tests serve: a plain class and a PyMeasure instrument on pyvisa-sim.

Imported by daemon child processes too (tests/support is on their PYTHONPATH).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal

from pyrolab_jupyter import Range, Unit

SIM_SOURCE = str(Path(__file__).with_name("sim_source.yaml"))


class PlainSupply:
    """A power supply written without pyrolab_jupyter: plain methods, a property, attributes."""

    def __init__(self, volts: float = 1.0) -> None:
        self._volts = volts
        self.driver_calls = 0  # how often a value reached the driver
        self.label = "bench supply"

    def set_voltage(self, volts: Annotated[float, Range(0, 5), Unit("V")]) -> float:
        """Set the output voltage."""
        self.driver_calls += 1
        self._volts = volts
        return volts

    def set_mode(self, mode: Literal["cv", "cc"]) -> str:
        """Constant voltage or constant current."""
        self.driver_calls += 1
        return mode

    def scale(self, value, factor=2):  # untyped on purpose
        """Multiply a value; no annotations at all."""
        return value * factor

    @property
    def voltage(self) -> Annotated[float, Unit("V")]:
        """The output voltage."""
        return self._volts

    @voltage.setter
    def voltage(self, volts: Annotated[float, Range(0, 5), Unit("V")]) -> None:
        self.driver_calls += 1
        self._volts = volts


@functools.cache
def _pymeasure_source() -> type:  # defined lazily: pymeasure is an optional extra
    from pymeasure.instruments import Channel, Instrument
    from pymeasure.instruments.validators import strict_discrete_set, strict_range

    class Output(Channel):
        """One output channel."""

        voltage = Channel.control("CH{ch}:VOLT?", "CH{ch}:VOLT %g", "Channel voltage in V.",
                                  validator=strict_range, values=[0, 5])

    class SimSource(Instrument):
        """A SCPI source on pyvisa-sim, driven by PyMeasure."""

        voltage = Instrument.control(
            "VOLT?", "VOLT %g", "Output voltage in V.", validator=strict_range, values=[-10, 10])
        output_enabled = Instrument.control(
            "OUTP?", "OUTP %d", "Whether the output is on.", validator=strict_discrete_set,
            values={True: 1, False: 0}, map_values=True)
        mode = Instrument.setting("MODE %s", "Sweep mode.", validator=strict_discrete_set,
                                  values=["FIX", "SWE", "LIST"])
        identity = Instrument.measurement("*IDN?", "The instrument's identification.", cast=str)
        output_a = Instrument.ChannelCreator(Output, "A")

        def __init__(self, adapter: str = "ASRL1::INSTR", name: str = "Sim source", **kwargs) -> None:
            kwargs.setdefault("visa_library", f"{SIM_SOURCE}@sim")
            kwargs.setdefault("read_termination", "\n")
            kwargs.setdefault("write_termination", "\n")
            super().__init__(adapter, name, includeSCPI=False, **kwargs)

        def zero(self) -> None:
            """Set the output to 0 V."""
            self.voltage = 0

    return SimSource


def __getattr__(name: str):
    if name == "SimSource":
        return _pymeasure_source()
    raise AttributeError(name)
