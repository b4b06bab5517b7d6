"""From one member's JSON Schema to an input widget: a pipeline of small pure mappers.

Each mapper looks at a schema and returns a *factory* (``Field -> Control``)
or ``None`` for "not mine"; ``MAPPERS`` tries them in an explicit order, and
the last one takes anything. The schema is the service's own description
(``describe()``), so nothing here guesses from client-side Python values.
``Field``, ``Control`` and the helpers they share with the panel's grid live
in ``controls``.
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
from ipywidgets.widgets.widget_string import LabelStyle, TextStyle

from pyrolab_jupyter.jupyter.controls import (
    Control,
    Field,
    TupleControl,
    bounds,
    check_range,
    format_value,
    shared,
)

__all__ = ["MAPPERS", "Factory", "Mapper", "control_for", "factory_for"]

_TOGGLE_MAX = 4  # four choices or fewer: toggle buttons, else a dropdown
_LONG_TEXT = 80  # maxLength or default above this: a textarea
_LOG_RATIO = 1e4  # positive bounds this far apart: a log slider
Factory = Callable[[Field], Control]
Mapper = Callable[[Mapping[str, Any]], "Factory | None"]


_BOX_WIDTH = "110px"


def _common(field: Field, labelled: bool = True) -> dict[str, Any]:
    """Constructor arguments every input takes: tooltip, writability, and the name where it is the label."""
    common = {"tooltip": field.tooltip or None, "disabled": field.disabled}
    return {**common, "description": field.name} if field.label and labelled else common


def _style(cls: type[widgets.Widget], field: Field, **traits: Any) -> Any:
    return shared(cls, description_width="initial" if field.label else "0px", **traits)


def _dress(value_widget: widgets.Widget, *extra: widgets.Widget) -> list[widgets.Widget]:
    """The value widget and its extras; the mappers' common layout."""
    value_widget.add_class("pyrolab-Panel-value")
    return [value_widget, *extra]


def _is_number(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") in ("number", "integer") and not schema.get("enum")


def _initial(field: Field, fallback: Any) -> Any:
    if field.has_value and field.value is not None:
        return field.value
    default = field.schema.get("default")
    return fallback if default is None else default


def _as_int(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "integer"


def _number(value: Any, integer: bool) -> Any:
    return int(value) if integer else float(value)


def _number_parser(name: str, schema: Mapping[str, Any]) -> Callable[[Any], Any]:
    integer = _as_int(schema)

    def parse(raw: Any) -> Any:
        if raw is None:
            raise ValueError(f"{name}: no number given")
        return check_range(name, _number(raw, integer), schema)

    return parse


def _labelled_width(field: Field, width: str) -> str:
    """A box's width plus room for its name when it carries one (the label is inside the widget's width)."""
    return f"calc({width} + {len(field.name) + 1}ch)" if field.label else width


def _number_box(field: Field, schema: Mapping[str, Any], value: Any, width: str = _BOX_WIDTH) -> widgets.Widget:
    """A plain number box: it takes whatever is typed; the range is checked by the parser (refused, not clamped)."""
    cls = widgets.IntText if _as_int(schema) else widgets.FloatText
    return cls(value=value, style=_style(DescriptionStyle, field),
               layout=shared(widgets.Layout, width=_labelled_width(field, width)), **_common(field))


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
        style = (_style(widgets.ToggleButtonsStyle, field, button_width="auto") if cls is widgets.ToggleButtons
                 else _style(DescriptionStyle, field))
        inner = cls(options=options, value=value if value in choices else choices[0], style=style,
                    layout=shared(widgets.Layout), **_common(field))
        return Control(_dress(inner), inner)

    return make


def map_bool(schema: Mapping[str, Any]) -> Factory | None:
    """bool: a checkbox (before numbers: JSON booleans are not numbers, Python's are)."""
    if schema.get("type") != "boolean":
        return None

    def make(field: Field) -> Control:
        inner = widgets.Checkbox(value=bool(_initial(field, False)), indent=False,
                                 style=_style(CheckboxStyle, field), layout=shared(widgets.Layout, width="auto"),
                                 **_common(field))
        return Control(_dress(inner), inner)

    return make


def _follow(slider: widgets.Widget, box: widgets.Widget, low: float, high: float) -> None:
    """The box follows the slider; the slider follows the box only inside the range.

    (``widgets.link`` would let the slider clamp a typed 80 to 50 and write 50
    back into the box: a silent clamp. Here 80 stays in the box, and the
    parser refuses it.)
    """

    def to_box(change: Mapping[str, Any]) -> None:
        box.value = change["new"]

    def to_slider(change: Mapping[str, Any]) -> None:
        new = change["new"]
        if new is not None and low <= new <= high:
            slider.value = new

    slider.observe(to_box, names="value")
    box.observe(to_slider, names="value")


def map_bounded_number(schema: Mapping[str, Any]) -> Factory | None:
    """Both bounds: a slider that sends on release beside a box for exact input (out of range: refused)."""
    low, high = bounds(schema)
    if not _is_number(schema) or low is None or high is None:
        return None
    integer = _as_int(schema)

    def make(field: Field) -> Control:
        value = _number(_initial(field, low), integer)
        inside = min(max(value, low), high)  # the slider's position; the box shows the true value
        style = {"continuous_update": False, "readout": False, "style": _style(widgets.SliderStyle, field),
                 "layout": shared(widgets.Layout, width="180px"), **_common(field, labelled=False)}
        if integer:
            slider: widgets.Widget = widgets.IntSlider(value=inside, min=low, max=high, **style)
        elif low > 0 and high / low >= _LOG_RATIO:
            slider = widgets.FloatLogSlider(
                value=inside, base=10, min=math.log10(low), max=math.log10(high), step=0.01, **style)
        else:
            slider = widgets.FloatSlider(value=inside, min=low, max=high, step=(high - low) / 1000, **style)
        box = _number_box(field, schema, value)
        slider.add_class("pyrolab-Panel-slider")
        _follow(slider, box, low, high)
        return Control(_dress(box, slider), box, parse=_number_parser(field.name, schema))

    return make


def map_half_bounded_number(schema: Mapping[str, Any]) -> Factory | None:
    """One bound: a number box whose parser refuses values beyond it."""
    low, high = bounds(schema)
    if not _is_number(schema) or (low is None) == (high is None):
        return None
    integer = _as_int(schema)

    def make(field: Field) -> Control:
        start = low if low is not None else min(0, high or 0)
        box = _number_box(field, schema, _number(_initial(field, start), integer))
        return Control(_dress(box), box, parse=_number_parser(field.name, schema))

    return make


def map_number(schema: Mapping[str, Any]) -> Factory | None:
    """No bounds: a number box."""
    if not _is_number(schema):
        return None
    integer = _as_int(schema)

    def make(field: Field) -> Control:
        box = _number_box(field, schema, _number(_initial(field, 0), integer))
        return Control(_dress(box), box, parse=_number_parser(field.name, schema))

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
        inner = cls(value=str(value), continuous_update=False,
                    layout=shared(widgets.Layout, width=_labelled_width(field, "350px")),
                    style=_style(TextStyle, field), **_common(field))
        return Control(_dress(inner), inner, parse=str, show=str)

    return make


_TUPLE_MAX = 8  # more items than this: a JSON box


def map_tuple(schema: Mapping[str, Any]) -> Factory | None:
    """A fixed-length tuple of numbers (``tuple[int, int]``, an ROI): one number box per item."""
    items = schema.get("prefixItems")
    if (schema.get("type") != "array" or not isinstance(items, list) or not 0 < len(items) <= _TUPLE_MAX
            or not all(isinstance(i, Mapping) and _is_number(i) for i in items)):
        return None

    def make(field: Field) -> Control:
        start = _initial(field, None)
        values = list(start) if isinstance(start, (list, tuple)) and len(start) == len(items) else [None] * len(items)
        boxes, parsers = [], []
        for index, (item, value) in enumerate(zip(items, values)):
            fallback = bounds(item)[0] or 0
            item_field = field if index == 0 else dataclasses.replace(field, label=False)  # one name for all
            box = _number_box(item_field, item, _number(fallback if value is None else value, _as_int(item)),
                              width="64px")
            box.add_class("pyrolab-Panel-value")
            box.add_class("pyrolab-Panel-tuple-item")
            boxes.append(box)
            parsers.append(_number_parser(f"{field.name}[{index}]", item))
        return TupleControl(field.name, boxes, parsers)

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
                             layout=shared(widgets.Layout, width=_labelled_width(field, "350px")),
                             style=_style(TextStyle, field),
                             **_common(field))
        return Control(_dress(inner), inner, parse=_json_parser(field.name, schema), show=_json_text)

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
                             layout=shared(widgets.Layout, width=_labelled_width(field, "350px")),
                             style=_style(TextStyle, field),
                             **_common(field))
        hint = widgets.Label("(any type)", style=shared(LabelStyle), layout=shared(widgets.Layout))
        hint.add_class("pyrolab-Panel-hint")
        return Control(_dress(inner, hint), inner, parse=parse, show=_json_text)

    return make


# The order matters: enums first (an enum of strings is a string, of numbers a
# number); bool before numbers; sliders need both bounds, so they come before
# the one-bound and unbounded boxes; tuples of numbers before JSON (which takes
# any other array); the catch-all last.
MAPPERS: Sequence[Mapper] = (
    map_enum,
    map_bool,
    map_bounded_number,
    map_half_bounded_number,
    map_number,
    map_string,
    map_tuple,
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
