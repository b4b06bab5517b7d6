"""Annotations for "one of these values", for drivers whose choices are not all text or integers.

``Literal`` covers text, integers and booleans; a driver may also offer float
choices (a range switch of 0.1, 1, 10 V), which ``Literal`` cannot hold. Those
become a number checked against the list, published as JSON Schema ``enum``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import pydantic

from pyrolab_jupyter.adapters.builder import SchemaExtra

__all__ = ["choices_annotation"]


def _plain(value: Any) -> Any:
    """numpy scalars and the like as the builtin they stand for."""
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, (str, bytes)) else value


def choices_annotation(values: Iterable[Any], *extra: Any) -> Any:
    """An annotation accepting exactly ``values`` (sorted for display), with ``extra`` metadata appended."""
    found = [_plain(v) for v in values]
    if not found:
        return Any
    if all(isinstance(v, str) for v in found) or all(isinstance(v, (int, bool)) for v in found):
        kind: Any = Literal[tuple(sorted(found, key=lambda v: (type(v).__name__, v)))]
        return Annotated[(kind, *extra)] if extra else kind
    numbers = [v for v in found if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) == len(found):
        allowed = sorted(numbers)

        def one_of(value: float) -> float:
            if not any(value == v for v in allowed):
                raise ValueError(f"not one of {allowed}")
            return value

        return Annotated[(float, pydantic.AfterValidator(one_of), SchemaExtra(enum=allowed), *extra)]
    shown = [v if isinstance(v, (str, int, float, bool)) or v is None else repr(v) for v in found]

    def among(value: Any) -> Any:
        if not any(value == v for v in found):
            raise ValueError(f"not one of {shown}")
        return value

    return Annotated[(Any, pydantic.AfterValidator(among), SchemaExtra(enum=shown), *extra)]
