"""Choice annotations: Literal for text and integers, a checked number list for floats."""

from __future__ import annotations

import pydantic
import pytest

from pyrolab_jupyter.adapters.choices import choices_annotation


def _adapter(values):
    return pydantic.TypeAdapter(choices_annotation(values))


def test_text_choices_are_a_sorted_literal():
    adapter = _adapter({"on", "off"})
    assert adapter.json_schema() == {"enum": ["off", "on"], "type": "string"}
    assert adapter.validate_python("on") == "on"
    with pytest.raises(pydantic.ValidationError):
        adapter.validate_python("maybe")


def test_float_choices_are_checked_numbers():
    adapter = _adapter([10, 0.1, 1.0])
    assert adapter.json_schema() == {"enum": [0.1, 1.0, 10], "type": "number"}
    assert adapter.validate_python(10) == 10
    with pytest.raises(pydantic.ValidationError, match="not one of"):
        adapter.validate_python(5)


def test_mixed_choices_and_none():
    adapter = _adapter(["AUTO", 1.5, None])
    assert adapter.validate_python(None) is None and adapter.validate_python("AUTO") == "AUTO"
    with pytest.raises(pydantic.ValidationError):
        adapter.validate_python("MANUAL")
