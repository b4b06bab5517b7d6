"""Controls and the helpers the panel's grid shares: range checks, limits text, read-only text."""

from __future__ import annotations

import ipywidgets as widgets
import pytest

from pyrolab_jupyter.jupyter.controls import Field, check_range, format_value, limits_text, readout


def test_check_range_refuses_with_the_bound_and_never_clamps():
    with pytest.raises(ValueError, match=r"power: 80 refused: above the maximum 50 mW; nothing was sent"):
        check_range("power", 80.0, {"maximum": 50, "x-unit": "mW"})
    with pytest.raises(ValueError, match="below the minimum 1"):
        check_range("n", 0, {"minimum": 1})
    with pytest.raises(ValueError, match="not above the exclusive minimum 0"):
        check_range("x", 0.0, {"exclusiveMinimum": 0})
    with pytest.raises(ValueError, match="not a finite number"):
        check_range("x", float("nan"), {})
    assert check_range("x", 0.5, {"exclusiveMinimum": 0, "maximum": 1}) == 0.5


def test_limits_text():
    assert limits_text({"minimum": 0, "maximum": 50}) == "0 … 50"
    assert limits_text({"minimum": 1e3, "maximum": 1e10}) == "1000 … 1e+10"
    assert limits_text({"exclusiveMinimum": 0}) == "> 0" and limits_text({"maximum": 9}) == "≤ 9"
    assert limits_text({"prefixItems": [{"minimum": 0}, {"minimum": 0}, {"minimum": 1}]}) == "≥ 0; ≥ 1"
    assert limits_text({"type": "string"}) == ""


def test_a_read_only_value_is_text():
    control = readout(Field("shape", {"type": "array"}, value=[480, 640]))
    assert isinstance(control.value_widget, widgets.HTML) and "480, 640" in control.value_widget.value
    control.set(True)
    assert control.value_widget.value == "yes"
    control.set("<b>")
    assert "&lt;b&gt;" in control.value_widget.value  # text, not markup
    assert format_value(2.5, "mW") == "2.5 mW" and format_value((1, 2)) == "1, 2"
