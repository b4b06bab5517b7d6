"""The schema → widget mapping table, one row per schema kind, without a frontend or a network."""

from __future__ import annotations

import ipywidgets as widgets
import pytest

from pyrolab_jupyter.jupyter.widget_mapping import (
    MAPPERS,
    Field,
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
        ({"type": "number", "minimum": 0, "maximum": 50}, widgets.BoundedFloatText),
        ({"type": "integer", "minimum": 1, "maximum": 10}, widgets.BoundedIntText),
        ({"type": "number", "minimum": 0}, widgets.BoundedFloatText),
        ({"type": "integer", "maximum": 9}, widgets.BoundedIntText),
        ({"type": "number"}, widgets.FloatText),
        ({"type": "integer"}, widgets.IntText),
        ({"type": "string", "enum": ["cw", "pulsed"]}, widgets.ToggleButtons),
        ({"type": "string", "enum": list("abcde")}, widgets.Dropdown),
        ({"type": "integer", "enum": [1, 2, 4, 8, 16]}, widgets.Dropdown),
        ({"type": "boolean"}, widgets.Checkbox),
        ({"type": "string"}, widgets.Text),
        ({"type": "string", "maxLength": 1000}, widgets.Textarea),
        ({"type": "array", "items": {"type": "integer"}}, widgets.Text),
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
    assert control.parts[0].description == "x"  # the name labels the value (the slider, where there is one)
    assert "pyrolab-Panel-value" in control.value_widget._dom_classes


def test_both_bounds_give_a_slider_that_sends_on_release_and_a_linked_box():
    control = control_for(Field("power", {"type": "number", "minimum": 0, "maximum": 50, "x-unit": "mW"}))
    slider = next(w for w in control.parts if isinstance(w, widgets.FloatSlider))
    assert slider.continuous_update is False
    assert (slider.min, slider.max) == (0, 50)
    slider.value = 12.5
    assert control.value_widget.value == 12.5 and control.get() == 12.5
    assert control.parts[-1].value == "mW"  # the unit beside the value
    assert isinstance(control.widget, widgets.HBox) and "pyrolab-Panel-field" in control.widget._dom_classes


def test_wide_positive_range_uses_a_log_slider():
    control = control_for(Field("rate", {"type": "number", "minimum": 1e3, "maximum": 1e10}, value=1e6))
    assert any(isinstance(w, widgets.FloatLogSlider) for w in control.parts)
    assert control.get() == 1e6


def test_one_bound_keeps_the_other_side_open():
    control = control_for(Field("t", {"type": "number", "minimum": 0}, value=5.0))
    assert control.value_widget.min == 0 and control.value_widget.max > 1e15
    control.value_widget.value = -3
    assert control.get() == 0  # clamped at the bound


def test_defaults_are_prefilled_and_docstrings_become_tooltips():
    schema = {"type": "integer", "minimum": 1, "maximum": 100, "default": 7}
    control = control_for(Field("n", schema, tooltip="How many"))
    assert control.get() == 7
    assert control.value_widget.tooltip == "How many"
    assert control.parts[0].tooltip == "How many"  # the slider too
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


def test_disabled_for_read_only():
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
