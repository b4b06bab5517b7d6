"""The schema → widget mapping table, one row per schema kind, without a frontend or a network."""

from __future__ import annotations

import ipywidgets as widgets
import pytest

from pyrolab_jupyter.jupyter.controls import Field, limits_text
from pyrolab_jupyter.jupyter.widget_mapping import (
    MAPPERS,
    control_for,
    factory_for,
    map_bool,
    map_bounded_number,
    map_enum,
    map_json,
    map_unknown,
)


def _classes(control):
    return [type(w).__name__ for w in control.widget.children]


@pytest.mark.parametrize(
    ("schema", "value_widget"),
    [
        # number boxes take anything typed; the range is checked on get() (refused, never clamped)
        ({"type": "number", "minimum": 0, "maximum": 50}, widgets.FloatText),
        ({"type": "integer", "minimum": 1, "maximum": 10}, widgets.IntText),
        ({"type": "number", "minimum": 0}, widgets.FloatText),
        ({"type": "integer", "maximum": 9}, widgets.IntText),
        ({"type": "number"}, widgets.FloatText),
        ({"type": "integer"}, widgets.IntText),
        ({"type": "string", "enum": ["cw", "pulsed"]}, widgets.ToggleButtons),
        ({"type": "string", "enum": list("abcde")}, widgets.Dropdown),
        ({"type": "integer", "enum": [1, 2, 4, 8, 16]}, widgets.Dropdown),
        ({"type": "boolean"}, widgets.Checkbox),
        ({"type": "string"}, widgets.Text),
        ({"type": "string", "maxLength": 1000}, widgets.Textarea),
        ({"type": "array", "items": {"type": "integer"}}, widgets.Text),
        ({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}]}, widgets.IntText),
        ({"type": "object"}, widgets.Text),
        ({"type": "array", "x-ndarray": True}, widgets.Text),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, widgets.Text),
        ({}, widgets.Text),
    ],
    ids=lambda v: str(v) if not isinstance(v, type) else v.__name__,
)
def test_mapping_table(schema, value_widget):
    control = control_for(Field("x", schema))
    assert type(control.value_widget) is value_widget
    assert not control.parts[0].description  # the label is the panel grid's own column
    assert "pyrolab-Panel-value" in control.value_widget._dom_classes


def test_both_bounds_give_a_slider_that_sends_on_release_beside_a_box():
    control = control_for(Field("power", {"type": "number", "minimum": 0, "maximum": 50, "x-unit": "mW"}))
    slider = next(w for w in control.parts if isinstance(w, widgets.FloatSlider))
    assert slider.continuous_update is False
    assert (slider.min, slider.max) == (0, 50)
    slider.value = 12.5
    assert control.value_widget.value == 12.5 and control.get() == 12.5
    control.value_widget.value = 20.0
    assert slider.value == 20.0  # the slider follows the box inside the range
    assert isinstance(control.widget, widgets.HBox) and "pyrolab-Panel-field" in control.widget._dom_classes
    assert limits_text(Field("p", {"minimum": 0, "maximum": 50}).schema) == "0 … 50"


def test_a_typed_value_outside_the_range_is_refused_not_clamped():
    schema = {"type": "number", "minimum": 0, "maximum": 50, "x-unit": "mW"}
    control = control_for(Field("power", schema, value=10.0))
    slider = next(w for w in control.parts if isinstance(w, widgets.FloatSlider))
    control.value_widget.value = 80.0
    assert control.value_widget.value == 80.0 and slider.value == 10.0  # the box keeps what was typed
    with pytest.raises(ValueError, match=r"power: 80 refused: above the maximum 50 mW; nothing was sent"):
        control.get()


def test_wide_positive_range_uses_a_log_slider():
    control = control_for(Field("rate", {"type": "number", "minimum": 1e3, "maximum": 1e10}, value=1e6))
    assert any(isinstance(w, widgets.FloatLogSlider) for w in control.parts)
    assert control.get() == 1e6


def test_one_bound_keeps_the_other_side_open():
    control = control_for(Field("t", {"type": "number", "minimum": 0}, value=5.0))
    control.value_widget.value = 1e300
    assert control.get() == 1e300
    control.value_widget.value = -3
    with pytest.raises(ValueError, match="-3 refused: below the minimum 0"):
        control.get()
    assert limits_text({"minimum": 0}) == "≥ 0" and limits_text({"maximum": 9}) == "≤ 9"


def test_a_tuple_of_numbers_is_one_box_per_item():
    schema = {"type": "array", "prefixItems": [{"type": "integer", "minimum": 0}, {"type": "integer", "minimum": 1}]}
    control = control_for(Field("roi", schema, value=[3, 4]))
    assert [b.value for b in control.parts] == [3, 4] and control.get() == [3, 4]
    seen = []
    control.on_commit(seen.append)
    control.set([5, 6])
    assert seen == [] and control.get() == [5, 6]
    control.parts[1].value = 0
    assert seen == [0]
    with pytest.raises(ValueError, match=r"roi\[1\]: 0 refused: below the minimum 1"):
        control.get()
    assert limits_text(schema) == "≥ 0; ≥ 1"


def test_defaults_are_prefilled_and_docstrings_become_tooltips():
    schema = {"type": "integer", "minimum": 1, "maximum": 100, "default": 7}
    control = control_for(Field("n", schema, tooltip="How many"))
    assert control.get() == 7
    assert control.value_widget.tooltip == "How many"
    assert control.parts[1].tooltip == "How many"  # the slider too
    assert control_for(Field("mode", {"enum": ["a", "b"], "default": "b"})).get() == "b"
    assert control_for(Field("s", {"type": "string", "default": "hi"})).get() == "hi"
    assert control_for(Field("l", {"type": "array", "default": [1, 2]})).get() == [1, 2]


def test_a_given_value_wins_over_the_default():
    control = control_for(Field("n", {"type": "integer", "default": 7}, value=3))
    assert control.get() == 3


def test_json_box_parses_and_explains_bad_input():
    control = control_for(Field("points", {"type": "array", "items": {"type": "number"}}))
    control.value_widget.value = "[1, 2.5]"
    assert control.get() == [1, 2.5]
    control.value_widget.value = "[1, 2"
    with pytest.raises(ValueError, match=r"points: '\[1, 2' is not valid JSON .*expected a JSON list"):
        control.get()


def test_unknown_takes_text_with_a_hint():
    control = control_for(Field("anything", {}))
    control.value_widget.value = "plain words"
    assert control.get() == "plain words"
    control.value_widget.value = "3"
    assert control.get() == 3
    assert any(isinstance(w, widgets.Label) and "any" in w.value for w in control.parts)


def test_disabled_when_asked():
    control = control_for(Field("p", {"type": "number"}, value=1.0, disabled=True))
    assert control.value_widget.disabled


def test_set_does_not_report_a_user_change_but_typing_does():
    control = control_for(Field("on", {"type": "boolean"}))
    seen = []
    control.on_commit(seen.append)
    control.set(True)
    assert seen == [] and control.get() is True
    control.value_widget.value = False
    assert seen == [False]


def test_order_is_explicit_and_each_mapper_declines_what_is_not_its():
    assert MAPPERS[0] is map_enum and MAPPERS[1] is map_bool and MAPPERS[-1] is map_unknown
    assert map_enum({"type": "string"}) is None
    assert map_bool({"type": "integer"}) is None
    assert map_bounded_number({"type": "number", "minimum": 0}) is None
    assert map_bounded_number({"enum": [1, 2], "type": "integer", "minimum": 0, "maximum": 3}) is None
    assert map_json({"type": "string"}) is None
    assert factory_for({"type": "mystery"}) is not None
