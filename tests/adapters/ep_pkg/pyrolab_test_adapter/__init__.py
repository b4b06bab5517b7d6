"""A driver this project has never heard of, and the plug-in adapter that serves it."""

from __future__ import annotations

from typing import Annotated

from pyrolab_jupyter import Range, Service, Unit, expose


class Thermometer:
    """A vendor's thermometer driver: not a Service, no annotations."""

    def __init__(self, kelvin=4.2):
        self.kelvin = kelvin
        self.heater_writes = 0

    def read(self):
        return self.kelvin

    def heat_to(self, kelvin):
        self.heater_writes += 1
        self.kelvin = kelvin


class ThermometerService(Service):
    """Served by the test plug-in."""

    def __init__(self, device: Thermometer) -> None:
        self.device = device

    @expose
    @property
    def temperature(self) -> Annotated[float, Unit("K")]:
        """The sample temperature."""
        return float(self.device.read())

    @expose
    def heat_to(self, kelvin: Annotated[float, Range(0, 300), Unit("K")]) -> None:
        """Regulate to a temperature."""
        self.device.heat_to(kelvin)

    @expose
    @property
    def heater_writes(self) -> int:
        return int(self.device.heater_writes)


class ThermoAdapter:
    """claims/adapt, as the entry-point group asks."""

    def claims(self, obj: object) -> bool:
        return isinstance(obj, Thermometer)

    def adapt(self, obj: Thermometer) -> Service:
        return ThermometerService(obj)


class Unservable:
    """What BrokenAdapter claims."""


class BrokenAdapter:
    """A plug-in with a bug: adapt() returns the object itself, not a Service."""

    def claims(self, obj: object) -> bool:
        return isinstance(obj, Unservable)

    def adapt(self, obj: object) -> object:
        return obj
