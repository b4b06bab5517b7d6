"""From one member's JSON Schema to an input widget: a pipeline of small pure mappers.

Each mapper looks at a schema and returns a *factory* (``Field -> Control``)
or ``None`` for "not mine"; ``MAPPERS`` tries them in an explicit order, and
the last one takes anything. The schema is the service's own description
(``describe()``), so nothing here guesses from client-side Python values.

A ``Control`` wraps the widget a panel lays out with three operations the
panel wires up: ``get()`` (the value to send, or ``ValueError`` saying what is
wrong with the text typed), ``set(value)`` (a value that arrived from the
service; does not echo back) and ``on_commit(callback)`` (the user changed it).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from ipywidgets.widgets.widget_bool import CheckboxStyle
from ipywidgets.widgets.widget_description import DescriptionStyle
from ipywidgets.widgets.widget_string import HTMLStyle, LabelStyle, TextStyle

__all__ = [
    "MAPPERS",
    "Control",
    "Factory",
    "Field",
    "Mapper",
    "bounds",
    "control_for",
    "factory_for",
    "HTMLStyle",
    "format_value",
    "shared",
    "unit_of",
]

_TOGGLE_MAX = 4  # four choices or fewer: toggle buttons, else a dropdown
_LONG_TEXT = 80  # maxLength or default above this: a textarea
_LOG_RATIO = 1e4  # positive bounds this far apart: a log slider
_MISSING = object()  # "no value" (None is a value)


@dataclasses.dataclass(frozen=True)
class Field:
    """What a factory needs besides the schema: label, tooltip, initial value, writability."""

    name: str
    schema: Mapping[str, Any]
    tooltip: str = ""
    value: Any = _MISSING  # an initial value (a parameter default, a property's current value)
    disabled: bool = False

    @property
    def has_value(self) -> bool:
        return self.value is not _MISSING


class Control:
    """A widget and how to read, write and watch the Python value it stands for.

    ``parts`` are the widgets side by side (value, then extras such as a value
    box or the unit); ``widget`` is the one to lay out: the value widget alone,
    or an ``HBox`` of the parts.
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


Factory = Callable[[Field], Control]
Mapper = Callable[[Mapping[str, Any]], "Factory | None"]


# helpers (pure)


def unit_of(schema: Mapping[str, Any]) -> str:
    return str(schema.get("x-unit") or "")


def bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(low, high)`` from minimum/maximum (or their exclusive forms); ``None`` where unbounded."""
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    return low, high


def _is_number(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") in ("number", "integer") and not schema.get("enum")


def format_value(value: Any, unit: str = "") -> str:
    """A value as short text, with its unit."""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value) if isinstance(value, (list, dict, bool, type(None))) else repr(value)
    return f"{text} {unit}" if unit else text


_LABEL_WIDTH = "130px"


def _common(field: Field) -> dict[str, Any]:
    """Constructor arguments every value widget takes: label, tooltip, writability."""
    return {"description": field.name, "tooltip": field.tooltip or None, "disabled": field.disabled}


def _style(cls: type[widgets.Widget], **traits: Any) -> Any:
    return shared(cls, description_width=_LABEL_WIDTH, **traits)


def _dress(field: Field, value_widget: widgets.Widget, *extra: widgets.Widget) -> list[widgets.Widget]:
    """The value widget, its extras and the unit beside them; the mappers' common layout."""
    value_widget.add_class("pyrolab-Panel-value")
    parts = [value_widget, *extra]
    unit = unit_of(field.schema)
    if unit:
        parts.append(widgets.Label(unit, layout=shared(widgets.Layout, min_width="2em"),
                                   style=shared(LabelStyle)))
    return parts


def _initial(field: Field, fallback: Any) -> Any:
    if field.has_value and field.value is not None:
        return field.value
    default = field.schema.get("default", _MISSING)
    return fallback if default is _MISSING or default is None else default


def _as_int(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "integer"


def _number(value: Any, integer: bool) -> Any:
    return int(value) if integer else float(value)


# mappers, in the order MAPPERS tries them


def map_enum(schema: Mapping[str, Any]) -> Factory | None:
    """``Literal``/``Enum``: toggle buttons for four choices or fewer, else a dropdown."""
    choices = schema.get("enum")
    if not isinstance(choices, list) or not choices:
        return None
    options = [(format_value(c), c) for c in choices]
    cls = widgets.ToggleButtons if len(choices) <= _TOGGLE_MAX else widgets.Dropdown

    def make(field: Field) -> Control:
        value = _initial(field, choices[0])
        style = (_style(widgets.ToggleButtonsStyle, button_width="auto") if cls is widgets.ToggleButtons
                 else _style(DescriptionStyle))
        inner = cls(options=options, value=value if value in choices else choices[0], style=style,
                    layout=shared(widgets.Layout), **_common(field))
        return Control(_dress(field, inner), inner)

    return make


def map_bool(schema: Mapping[str, Any]) -> Factory | None:
    """bool: a checkbox (before numbers: JSON booleans are not numbers, Python's are)."""
    if schema.get("type") != "boolean":
        return None

    def make(field: Field) -> Control:
        inner = widgets.Checkbox(value=bool(_initial(field, False)), indent=True,
                                 style=_style(CheckboxStyle), layout=shared(widgets.Layout), **_common(field))
        return Control(_dress(field, inner), inner)

    return make


def map_bounded_number(schema: Mapping[str, Any]) -> Factory | None:
    """Both bounds: a slider that sends on release, linked to a value box for exact input."""
    low, high = bounds(schema)
    if not _is_number(schema) or low is None or high is None:
        return None
    integer = _as_int(schema)

    def make(field: Field) -> Control:
        value = min(max(_number(_initial(field, low), integer), low), high)
        style = {"continuous_update": False, "readout": False, "style": _style(widgets.SliderStyle),
                 "layout": shared(widgets.Layout, width="360px"), **_common(field)}
        boxed = {"min": low, "max": high, "tooltip": field.tooltip or None, "disabled": field.disabled,
                 "style": shared(DescriptionStyle), "layout": shared(widgets.Layout, width="110px")}
        if integer:
            slider: widgets.Widget = widgets.IntSlider(value=value, min=low, max=high, **style)
            box: widgets.Widget = widgets.BoundedIntText(value=value, **boxed)
        elif low > 0 and high / low >= _LOG_RATIO:
            slider = widgets.FloatLogSlider(
                value=value, base=10, min=math.log10(low), max=math.log10(high), step=0.01, **style)
            box = widgets.BoundedFloatText(value=value, **boxed)
        else:
            slider = widgets.FloatSlider(value=value, min=low, max=high, step=(high - low) / 1000, **style)
            box = widgets.BoundedFloatText(value=value, step=None, **boxed)
        slider.add_class("pyrolab-Panel-slider")
        box.add_class("pyrolab-Panel-value")
        # the box is the value: exact, and it follows the slider (and the slider it)
        widgets.link((slider, "value"), (box, "value"))
        return Control(_dress(field, slider, box), box, parse=lambda raw: _number(raw, integer))

    return make


def map_half_bounded_number(schema: Mapping[str, Any]) -> Factory | None:
    """One bound: a bounded text box (the missing side left wide open)."""
    low, high = bounds(schema)
    if not _is_number(schema) or (low is None) == (high is None):
        return None
    integer = _as_int(schema)
    cls = widgets.BoundedIntText if integer else widgets.BoundedFloatText
    big = 2**53

    def make(field: Field) -> Control:
        lo = -big if low is None else low
        hi = big if high is None else high
        value = min(max(_number(_initial(field, lo if low is not None else min(0, hi)), integer), lo), hi)
        inner = cls(value=value, min=lo, max=hi, layout=shared(widgets.Layout, width="290px"),
                    style=_style(DescriptionStyle), **_common(field))
        return Control(_dress(field, inner), inner, parse=lambda raw: _number(raw, integer))

    return make


def map_number(schema: Mapping[str, Any]) -> Factory | None:
    """No bounds: a number box."""
    if not _is_number(schema):
        return None
    integer = _as_int(schema)
    cls = widgets.IntText if integer else widgets.FloatText

    def make(field: Field) -> Control:
        inner = cls(value=_number(_initial(field, 0), integer), layout=shared(widgets.Layout, width="290px"),
                    style=_style(DescriptionStyle), **_common(field))
        return Control(_dress(field, inner), inner, parse=lambda raw: _number(raw, integer))

    return make


def map_string(schema: Mapping[str, Any]) -> Factory | None:
    """str: a text box, a textarea when the text may be long."""
    if schema.get("type") != "string":
        return None
    long = int(schema.get("maxLength") or 0) > _LONG_TEXT or len(str(schema.get("default") or "")) > _LONG_TEXT // 2

    def make(field: Field) -> Control:
        value = _initial(field, "")
        long_now = long or "\n" in str(value)
        cls = widgets.Textarea if long_now else widgets.Text
        inner = cls(value=str(value), continuous_update=False, layout=shared(widgets.Layout, width="400px"),
                    style=_style(TextStyle), **_common(field))
        return Control(_dress(field, inner), inner, parse=str, show=str)

    return make


def _json_parser(name: str, schema: Mapping[str, Any]) -> Callable[[Any], Any]:
    expected = _json_kind(schema)

    def parse(raw: Any) -> Any:
        try:
            return json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"{name}: {raw!r} is not valid JSON ({err.msg} at column {err.colno}); "
                             f"expected {expected}") from None

    return parse


def _json_kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if schema.get("x-ndarray"):
        return "an array as a JSON list, like [1, 2, 3] or [[1, 2], [3, 4]]"
    if kind == "array":
        return "a JSON list, like [1, 2]"
    if kind == "object":
        return 'a JSON object, like {"key": 1}'
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        kinds = sorted({str(o.get("type", "any")) for o in options if isinstance(o, Mapping)})
        return "JSON: " + " or ".join(kinds)
    return "JSON"


def map_json(schema: Mapping[str, Any]) -> Factory | None:
    """Lists, objects, arrays, unions (``X | None``) and null: a box that parses JSON."""
    kind = schema.get("type")
    if kind not in ("array", "object", "null") and not (schema.get("anyOf") or schema.get("oneOf")):
        return None

    def make(field: Field) -> Control:
        value = field.value if field.has_value else schema.get("default")
        inner = widgets.Text(value=_json_text(value), placeholder=_json_kind(schema), continuous_update=False,
                             layout=shared(widgets.Layout, width="400px"), style=_style(TextStyle),
                             **_common(field))
        return Control(_dress(field, inner), inner, parse=_json_parser(field.name, schema), show=_json_text)

    return make


def _json_text(value: Any) -> str:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        value = value.tolist()
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def map_unknown(schema: Mapping[str, Any]) -> Factory:
    """Anything else: text, sent as JSON when it parses as JSON and as a string otherwise."""

    def parse(raw: Any) -> Any:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw

    def make(field: Field) -> Control:
        value = field.value if field.has_value else schema.get("default")
        inner = widgets.Text(value="" if value is None else _json_text(value),
                             placeholder="any value: JSON, or plain text", continuous_update=False,
                             layout=shared(widgets.Layout, width="400px"), style=_style(TextStyle),
                             **_common(field))
        hint = widgets.Label("(any type)", style=shared(LabelStyle), layout=shared(widgets.Layout))
        hint.add_class("pyrolab-Panel-hint")
        return Control(_dress(field, inner, hint), inner, parse=parse, show=_json_text)

    return make


# The order matters: enums first (an enum of strings is a string, of numbers a
# number); bool before numbers; sliders need both bounds, so they come before
# the one-bound and unbounded boxes; JSON after the scalars; the catch-all last.
MAPPERS: Sequence[Mapper] = (
    map_enum,
    map_bool,
    map_bounded_number,
    map_half_bounded_number,
    map_number,
    map_string,
    map_json,
    map_unknown,
)


def factory_for(schema: Mapping[str, Any], mappers: Sequence[Mapper] = MAPPERS) -> Factory:
    """The first factory a mapper offers for ``schema``."""
    for mapper in mappers:
        factory = mapper(schema)
        if factory is not None:
            return factory
    return map_unknown(schema)


def control_for(field: Field, mappers: Sequence[Mapper] = MAPPERS) -> Control:
    """A ready ``Control`` for one parameter or property."""
    return factory_for(field.schema, mappers)(field)
