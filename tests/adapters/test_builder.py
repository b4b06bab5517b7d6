"""ServiceBuilder: a real Service around any object; what our schema cannot describe becomes untyped."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import pytest

from pyrolab_jupyter import Range, Unit
from pyrolab_jupyter.adapters.builder import SchemaExtra, ServiceBuilder, number_annotation
from pyrolab_jupyter.core.service import Service, schema_of
from pyrolab_jupyter.errors import InvalidArgument


class Opaque:
    """Something pydantic cannot describe."""


class Driver:
    """A driver."""

    def __init__(self) -> None:
        self.closed = False
        self.level = 0.0

    def lock(self) -> None:
        """Collides with RemoteService.lock: not forwarded."""

    def measure(self, sensor: Opaque | None = None, *, gain: Annotated[float, Range(1, 10)] = 1.0) -> Opaque:
        return Opaque()

    def close(self) -> None:
        self.closed = True


def test_members_forward_and_unknown_types_become_untyped():
    driver = Driver()
    builder = ServiceBuilder(driver)
    builder.method("lock", driver.lock)
    builder.method("measure", driver.measure)
    builder.prop("level", lambda: driver.level, lambda v: setattr(driver, "level", v),
                 Annotated[float, Range(0, 5), Unit("V"), SchemaExtra(title="Level")], "Output level.")
    service = builder.build()
    assert isinstance(service, Service) and builder.skipped == ["lock"]
    described = service.describe()
    assert described["class"] == f"{Driver.__module__}:Driver" and described["description"] == "A driver."
    measure = described["methods"]["measure"]
    assert measure["parameters"]["properties"]["sensor"] == {"default": None}  # Opaque: untyped
    assert measure["parameters"]["properties"]["gain"]["maximum"] == 10
    assert described["properties"]["level"]["schema"] == {"type": "number", "minimum": 0, "maximum": 5,
                                                          "x-unit": "V", "title": "Level"}
    schema = schema_of(type(service))
    with pytest.raises(InvalidArgument, match="gain"):
        schema.methods["measure"].validate((), {"gain": 20})
    service.level = 2.5
    assert driver.level == 2.5
    assert "gain" in str(inspect.signature(type(service).measure))
    service.close()
    assert driver.closed


def test_number_annotation_drops_infinite_and_missing_bounds():
    assert number_annotation(float) is float
    assert number_annotation(float, float("-inf"), float("inf")) is float
    only_max = number_annotation(int, None, 7, Unit("K"))
    assert only_max == Annotated[int, Range(None, 7), Unit("K")]


def test_each_adapted_object_gets_its_own_class():
    first, second = ServiceBuilder(Driver()), ServiceBuilder(Driver())
    first.prop("a", lambda: 1)
    second.prop("b", lambda: 2, annotation=Any)
    one, two = first.build(), second.build()
    assert type(one) is not type(two)
    assert set(one.describe()["properties"]) == {"a"} and set(two.describe()["properties"]) == {"b"}
