"""Serve a PyMeasure instrument: ``control``/``measurement``/``setting`` properties with validators and units.

PyMeasure keeps a property's validator and ``values`` as defaults of its
getter and setter; they become ranges (``strict_range``, ``truncated_range``,
``strict_discrete_range``) or choices (``strict_discrete_set``,
``truncated_discrete_set``, mapped ``values``). The daemon then refuses a value
outside them instead of letting the driver truncate it. The unit is read from
the property's documentation (``"Output voltage in V"``, ``"... (Hz)"``). A
``measurement`` is read-only, a ``setting`` write-only (reading gives the last
value set). Public methods of the driver class are served as methods, and
channels (``ch_A``) under dotted names in the same service (``ch_A.voltage``).
"""

from __future__ import annotations

import inspect
import re
from typing import Annotated, Any

from pyrolab_jupyter.adapters.builder import SchemaExtra, ServiceBuilder, number_annotation
from pyrolab_jupyter.adapters.choices import choices_annotation
from pyrolab_jupyter.adapters.registry import require_extra
from pyrolab_jupyter.core.service import Service, Unit

__all__ = ["PyMeasureAdapter", "unit_from_doc"]

_FRAMEWORK_MODULES = frozenset({
    "pymeasure.instruments.common_base", "pymeasure.instruments.instrument",
    "pymeasure.instruments.channel", "pymeasure.instruments.generic_types", "builtins",
})
_UNIT_WORDS = {"volts": "V", "volt": "V", "amps": "A", "amperes": "A", "ampere": "A", "ohms": "Ω",
               "seconds": "s", "hertz": "Hz", "watts": "W", "degrees": "°", "kelvin": "K"}
_UNITS = {"V", "mV", "uV", "µV", "kV", "A", "mA", "uA", "µA", "nA", "Hz", "kHz", "MHz", "GHz", "W", "mW",
          "dBm", "dB", "s", "ms", "us", "µs", "ns", "Ohm", "Ω", "kOhm", "MOhm", "K", "°C", "degC", "m", "mm",
          "nm", "um", "µm", "%", "deg", "rad", "F", "H", "T"}
_UNIT_RE = re.compile(r"(?:\bin (?:units of )?|\()([A-Za-zµΩ°%]+)\)?")


def unit_from_doc(doc: str) -> str | None:
    """The unit a PyMeasure docstring names (``"in V"``, ``"(Hz)"``, ``"in volts"``), or None."""
    for match in _UNIT_RE.finditer(doc or ""):
        word = match.group(1)
        if word in _UNITS:
            return word
        if word.lower() in _UNIT_WORDS:
            return _UNIT_WORDS[word.lower()]
    return None


def _defaults(func: Any) -> dict[str, Any]:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return {}
    return {n: p.default for n, p in params.items() if p.default is not p.empty}


def _annotation(prop: property, obj: Any, name: str, validators: Any, unit: str | None) -> Any:
    """Range or choices from the setter's validator and ``values`` (an instance may override them)."""
    setter, getter = _defaults(prop.fset) if prop.fset else {}, _defaults(prop.fget) if prop.fget else {}
    values = getattr(obj, f"{name}_values", setter.get("values", getter.get("values", ())))
    validator = setter.get("validator")
    mapped = setter.get("map_values", getter.get("map_values", False))
    extra: list[Any] = [Unit(unit)] if unit else []
    if getter.get("get_command", "") is None:
        extra.append(SchemaExtra(writeOnly=True))
    if mapped and isinstance(values, dict):
        return choices_annotation(values.keys(), *extra)
    if validator in (validators.strict_discrete_set, validators.truncated_discrete_set) or (
            mapped and isinstance(values, (list, tuple, range))):
        return choices_annotation(values, *extra)
    if validator in (validators.strict_range, validators.truncated_range, validators.strict_discrete_range) \
            and isinstance(values, (list, tuple, range)) and len(values) >= 2:
        return number_annotation(float, min(values), max(values), *extra)
    return Annotated[(Any, *extra)] if extra else Any


class PyMeasureAdapter:
    """PyMeasure instruments (``pymeasure.instruments.Instrument`` subclasses)."""

    name = "pymeasure"
    extra: str | None = "pymeasure"

    def claims(self, obj: Any) -> bool:
        return any(k.__module__.split(".")[0] == "pymeasure" for k in type(obj).__mro__) \
            and hasattr(type(obj), "control")

    def adapt(self, obj: Any) -> Service:
        require_extra("pymeasure", self.extra)
        from pymeasure.instruments import Channel, validators

        builder = ServiceBuilder(obj, close=getattr(getattr(obj, "adapter", None), "close", None))
        seen: set[int] = set()

        def add(module: Any, prefix: str) -> None:
            if id(module) in seen:
                return
            seen.add(id(module))
            for cls in type(module).__mro__:
                if cls.__module__ in _FRAMEWORK_MODULES:
                    continue
                for name, member in vars(cls).items():
                    if name.startswith("_"):
                        continue
                    if isinstance(member, property):
                        self._add_property(builder, module, name, prefix, member, validators)
                    elif inspect.isfunction(member):
                        builder.method(prefix + name, getattr(module, name))
            for attr, child in sorted(vars(module).items()):
                if isinstance(child, Channel) and not attr.startswith("_"):
                    add(child, f"{prefix}{attr}.")

        add(obj, "")
        return builder.build()

    @staticmethod
    def _add_property(builder: ServiceBuilder, obj: Any, name: str, prefix: str, prop: property,
                      validators: Any) -> None:
        doc = inspect.cleandoc(prop.fget.__doc__ or "") if prop.fget else ""
        annotation = _annotation(prop, obj, name, validators, unit_from_doc(doc))
        write_only = _defaults(prop.fget).get("get_command", "") is None if prop.fget else True
        last: dict[str, Any] = {}

        def get() -> Any:
            return last.get("value") if write_only else getattr(obj, name)

        def put(value: Any) -> None:
            setattr(obj, name, value)
            last["value"] = value

        writable = prop.fset is not None and _defaults(prop.fset).get("set_command", "") is not None
        builder.prop(prefix + name, get, put if writable else None, annotation, doc)
