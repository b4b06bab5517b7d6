"""Services for the safety-rule tests; imported by daemon child processes too."""

from __future__ import annotations

import threading
from typing import Annotated, ClassVar

from pyrolab_jupyter import Interlock, Ramp, Range, Requirement, Service, Unit, expose

Volts = Annotated[float, Range(-10, 10), Unit("V")]


class Source(Service):
    """A voltage source whose setpoint must ramp, with a stop action; records every value it was given."""

    ramps: ClassVar = {"set_level.volts": Ramp(step=0.5, interval=0.05, reads="level")}

    def __init__(self, max_volts: float = 10.0) -> None:
        self._level = 0.0
        self._applied: list[float] = []
        self._mutex = threading.Lock()
        self.narrow("set_level.volts", -max_volts, max_volts)

    @expose
    def set_level(self, volts: Volts) -> None:
        """Apply a voltage."""
        with self._mutex:
            self._level = volts
            self._applied.append(volts)

    @expose
    @property
    def level(self) -> Annotated[float, Unit("V")]:
        """The voltage applied now."""
        return self._level

    @expose
    @property
    def bias(self) -> Volts:
        """A second setpoint, ramped through its property setter when the lab file says so."""
        return self._level

    @bias.setter
    def bias(self, volts: Volts) -> None:
        self.set_level(volts)

    @expose(readonly=True)
    def applied(self) -> list[float]:
        """Every value set so far, in order."""
        return list(self._applied)

    @expose(stop=True)
    def stop(self) -> None:
        """Hold the present level."""


class GatedSource(Source):
    """A source that may only be switched on while its own ``armed`` is true."""

    interlocks: ClassVar = [Interlock(call="switch_on", require=Requirement(property="is_armed", equals=True),
                                      message="arm it first")]

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.on = False

    @expose
    def switch_on(self) -> None:
        self.on = True

    @expose
    def arm(self) -> None:
        self.armed = True

    @expose
    @property
    def is_armed(self) -> bool:
        return self.armed
