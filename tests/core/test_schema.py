"""Descriptions and validation generated from annotations (no network)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from labservices import Dummy, Mode

from pyrolab_jupyter.core.errors import InvalidArgument
from pyrolab_jupyter.core.schema import JSON_SCHEMA_DIALECT
from pyrolab_jupyter.core.service import Service, expose, schema_of


def test_description_is_json_schema_from_annotations():
    description = Dummy().describe()
    json.dumps(description)
    assert description["$schema"] == JSON_SCHEMA_DIALECT
    assert description["class"] == "labservices:Dummy"
    assert description["description"] == "A test instrument."
    method = description["methods"]["set_power"]
    assert method["description"] == "Set the output power."
    assert method["parameters"]["required"] == ["mw"]
    assert method["parameters"]["properties"]["mw"] == {"type": "number", "minimum": 0, "maximum": 50,
                                                        "x-unit": "mW"}
    assert method["returns"] == {"type": "null"}
    assert description["methods"]["echo"]["readonly"] is True
    assert description["methods"]["choose"]["parameters"]["properties"]["kind"]["enum"] == ["a", "b"]
    assert description["methods"]["dtype_of"]["parameters"]["properties"]["value"]["x-ndarray"] is True
    power = description["properties"]["power"]
    assert power == {"description": "Output power.", "readonly": False,
                     "schema": {"type": "number", "x-unit": "mW", "minimum": 0, "maximum": 50}}


def test_validation_messages_name_parameter_value_and_bound():
    call = schema_of(Dummy).methods["set_power"]
    with pytest.raises(InvalidArgument, match=r"^set_power\(\): mw=99 is above the maximum 50 \(mW\)$"):
        call.validate((99,), {})
    with pytest.raises(InvalidArgument, match=r"mw=-1 is below the minimum 0 \(mW\)"):
        call.validate((-1,), {})
    with pytest.raises(InvalidArgument, match="mw='x'"):
        call.validate(("x",), {})
    with pytest.raises(InvalidArgument, match="unexpected keyword"):
        call.validate((1,), {"watts": 1})
    assert call.validate(("3",), {}) == ((), {"mw": 3.0})


def test_enums_are_converted_on_the_way_in():
    prop = schema_of(Dummy).properties["mode"]
    assert prop.validate("pulsed") is Mode.PULSED
    with pytest.raises(InvalidArgument, match="mode='x' is not one of"):
        prop.validate("x")


def test_exposure_rules():
    class Base(Service):
        @expose
        def a(self) -> int:
            return 1

        @expose
        def b(self) -> int:
            return 2

        def _hidden(self) -> None: ...

    class Child(Base):
        def b(self) -> int:  # overridden without expose: no longer public
            return 3

    assert set(schema_of(Child).methods) == {"a"}
    with pytest.raises(TypeError):
        expose(42)


def test_arrays_inside_unions_and_containers_are_described():
    class Arrays(Service):
        @expose
        def take(self, a: np.ndarray | None = None, many: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
            return {}

    params = schema_of(Arrays).description["methods"]["take"]["parameters"]["properties"]
    assert {"type": "array", "x-ndarray": True} in params["a"]["anyOf"]
    call = schema_of(Arrays).methods["take"]
    _, checked = call.validate(([1, 2], [[3]]), {})
    assert isinstance(checked["a"], np.ndarray) and isinstance(checked["many"][0], np.ndarray)
