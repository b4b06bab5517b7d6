"""What a panel's inputs are made of: ``Field`` (what to build), ``Control`` (how to read, write and
watch it), and the pure helpers both the mappers and the panel's grid use (units, limits, range checks,
value text).

A ``Control`` wraps the input widgets a panel lays out (no label, unit or
limits: the panel's grid puts those in their own columns) with three
operations the panel wires up: ``get()`` (the value to send, or
``ValueError`` saying what is wrong with what was typed, e.g. a number
outside the range: refused, never clamped), ``set(value)`` (a value that
arrived from the service; does not echo back) and ``on_commit(callback)``
(the user changed it). ``readout()`` is the control of a read-only value:
text, not a disabled input.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle

__all__ = [
    "REFUSED",
    "Control",
    "Field",
    "TupleControl",
    "bounds",
    "check_range",
    "format_value",
    "limits_text",
    "readout",
    "shared",
    "unit_of",
]

_MISSING = object()  # "no value" (None is a value)
REFUSED = "refused:"  # in every message of a value refused before it is sent


@dataclasses.dataclass(frozen=True)
class Field:
    """What a factory needs besides the schema: name, tooltip, initial value, writability."""

    name: str
    schema: Mapping[str, Any]
    tooltip: str = ""
    value: Any = _MISSING  # an initial value (a parameter default, a property's current value)
    disabled: bool = False
    label: bool = False  # the input carries the name (a method's argument); a property's label is the grid's

    @property
    def has_value(self) -> bool:
        return self.value is not _MISSING


class Control:
    """Input widgets and how to read, write and watch the Python value they stand for.

    ``parts`` are the widgets side by side (a slider and its value box, or one
    box); ``widget`` is the one to lay out: the single part, or an ``HBox`` of
    the parts.
    """

    def __init__(
        self,
        parts: Sequence[widgets.Widget],
        value_widget: widgets.ValueWidget,
        parse: Callable[[Any], Any] = lambda raw: raw,
        show: Callable[[Any], Any] = lambda value: value,
    ) -> None:
        self.parts = tuple(parts)
        self.value_widget = value_widget
        self._parse = parse
        self._show = show
        self._quiet = False
        self._box: widgets.Widget | None = None
        self._callbacks: list[Callable[[Any], None]] = []
        value_widget.observe(self._changed, names="value")

    @property
    def widget(self) -> widgets.Widget:
        if len(self.parts) == 1:
            return self.parts[0]
        if self._box is None:
            self._box = widgets.HBox(self.parts, layout=shared(widgets.Layout, align_items="center"))
            self._box.add_class("pyrolab-Panel-field")
        return self._box

    def get(self) -> Any:
        """The value to send; ``ValueError`` with a readable message when the input is not valid."""
        return self._parse(self.value_widget.value)

    def set(self, value: Any) -> None:
        """Show a value that came from the service, without reporting it as a user change."""
        self._quiet = True
        try:
            self.value_widget.value = self._show(value)
        finally:
            self._quiet = False

    def on_commit(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(raw)`` when the user commits a new value."""
        self._callbacks.append(callback)

    def _changed(self, change: Mapping[str, Any]) -> None:
        if self._quiet:
            return
        for callback in self._callbacks:
            callback(change["new"])


class TupleControl(Control):
    """A fixed-length tuple of numbers: one box per item; the value is the list of the items."""

    def __init__(self, name: str, boxes: Sequence[widgets.ValueWidget],
                 parsers: Sequence[Callable[[Any], Any]]) -> None:
        self.boxes = tuple(boxes)
        self._parsers = tuple(parsers)
        self._name = name
        super().__init__(self.boxes, self.boxes[0])
        for box in self.boxes[1:]:
            box.observe(self._changed, names="value")

    def get(self) -> list[Any]:
        return [parse(box.value) for parse, box in zip(self._parsers, self.boxes)]

    def set(self, value: Any) -> None:
        items = list(value) if isinstance(value, (list, tuple)) else []
        if len(items) != len(self.boxes):
            raise ValueError(f"{self._name}: expected {len(self.boxes)} items, got {value!r}")
        self._quiet = True
        try:
            for box, item in zip(self.boxes, items):
                box.value = item
        finally:
            self._quiet = False


_shared: dict[tuple[Any, ...], widgets.Widget] = {}


def shared(cls: type[widgets.Widget], **traits: Any) -> Any:
    """One ``Layout``/style instance per distinct settings, shared by every widget that uses it.

    Each ipywidgets widget otherwise creates its own layout and style models,
    which is about half the cost of building a panel.
    """
    key = (cls, *sorted(traits.items()))
    found = _shared.get(key)
    if found is None or found.comm is None:  # closed (Widget.close_all): make a new one
        found = _shared[key] = cls(**traits)
    return found


# helpers (pure)


def unit_of(schema: Mapping[str, Any]) -> str:
    return str(schema.get("x-unit") or "")


def bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(low, high)`` from minimum/maximum (or their exclusive forms); ``None`` where unbounded."""
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    return low, high


def _short(number: float) -> str:
    return f"{number:.6g}"


def limits_text(schema: Mapping[str, Any]) -> str:
    """The range as the panel's limits column shows it: ``0 … 50``, ``≥ 0``, ``≤ 9`` or nothing."""
    items = schema.get("prefixItems")
    if isinstance(items, list) and items:
        texts = [limits_text(item) for item in items if isinstance(item, Mapping)]
        return "; ".join(t for t in dict.fromkeys(texts) if t)
    low, high = bounds(schema)
    if low is not None and high is not None:
        return f"{_short(low)} … {_short(high)}"
    if low is not None:
        return f"{'>' if 'exclusiveMinimum' in schema else '≥'} {_short(low)}"
    if high is not None:
        return f"{'<' if 'exclusiveMaximum' in schema else '≤'} {_short(high)}"
    return ""


def check_range(name: str, value: float, schema: Mapping[str, Any]) -> float:
    """``value`` when the schema's range allows it, else ``ValueError`` naming the bound (never clamped)."""
    unit = unit_of(schema)
    suffix = f" {unit}" if unit else ""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name}: {value} {REFUSED} not a finite number")
    checks: tuple[tuple[str, Callable[[float], bool], str], ...] = (
        ("minimum", lambda bound: value < bound, "below the minimum"),
        ("exclusiveMinimum", lambda bound: value <= bound, "not above the exclusive minimum"),
        ("maximum", lambda bound: value > bound, "above the maximum"),
        ("exclusiveMaximum", lambda bound: value >= bound, "not below the exclusive maximum"),
    )
    for key, bad, word in checks:
        if key in schema and bad(schema[key]):
            raise ValueError(f"{name}: {_short(value)} {REFUSED} {word} {_short(schema[key])}{suffix}; "
                             "nothing was sent")
    return value


def format_value(value: Any, unit: str = "") -> str:
    """A value as short text, with its unit."""
    if hasattr(value, "tolist"):  # numpy scalars and small arrays
        value = value.tolist()
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, tuple):
        text = ", ".join(format_value(v) for v in value)
    else:
        try:
            text = json.dumps(value) if isinstance(value, (list, dict, bool, type(None))) else repr(value)
        except (TypeError, ValueError):  # a container holding what JSON cannot say (complex numbers)
            text = repr(value)
    return f"{text} {unit}" if unit else text


def _readout_text(value: Any) -> str:
    if isinstance(value, list) and len(value) <= 8 and all(isinstance(v, (int, float)) for v in value):
        value = tuple(value)  # a tuple property (sensor shape, limits): its items, not JSON
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"<span class='pyrolab-Panel-readout-text'>{html.escape(format_value(value))}</span>"


def readout(field: Field) -> Control:
    """A read-only value: text that follows the service (``set``), never an input."""
    inner = widgets.HTML(_readout_text(field.value) if field.has_value else "",
                         style=shared(HTMLStyle), layout=shared(widgets.Layout))
    inner.add_class("pyrolab-Panel-readout")
    inner.add_class("pyrolab-Panel-value")
    return Control([inner], inner, show=_readout_text)
