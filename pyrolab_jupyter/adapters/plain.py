"""Serve any Python object: its public methods and properties, typed where it says so, untyped otherwise.

Public methods become methods and properties stay properties (read-only without
a setter); public instance attributes holding plain values (numbers, text,
booleans) become read/write properties. Annotations are used where present
(``float``, ``Literal[...]``, ``Annotated[float, Range(0, 5), Unit("V")]``), so a
class written with them is validated like a native service; anything else is
served untyped with its docstring.
"""

from __future__ import annotations

import inspect
from typing import Any

from pyrolab_jupyter.adapters.builder import ServiceBuilder, type_hints
from pyrolab_jupyter.core.service import Service

__all__ = ["PlainAdapter", "add_members"]

_PLAIN_VALUES = (bool, int, float, str)


def _attribute_accessors(obj: Any, name: str) -> tuple[Any, Any]:
    def get() -> Any:
        return getattr(obj, name)

    def put(value: Any) -> None:
        setattr(obj, name, value)

    return get, put


def add_members(builder: ServiceBuilder, obj: Any, only: set[str] | None = None) -> None:
    """Add ``obj``'s public methods, properties and plain attributes (or just those ``only`` names)."""
    cls = type(obj)
    owned = {n for k in cls.__mro__ if k is not object for n in vars(k)}
    class_hints = type_hints(cls)
    for name in sorted(owned | set(getattr(obj, "__dict__", {})) if only is None else only):
        if name.startswith("_"):
            continue
        static = inspect.getattr_static(obj, name, None)
        if isinstance(static, property):
            hints = type_hints(static.fget) if static.fget else {}
            annotation = hints.get("return", Any)
            if annotation is None or annotation is type(None):  # "-> None" on a getter says nothing useful
                annotation = Any
            if static.fset is not None:
                annotation = next(iter(v for k, v in type_hints(static.fset).items() if k != "return"), annotation)
            get, put = _attribute_accessors(obj, name)
            builder.prop(name, get, put if static.fset is not None else None, annotation,
                         inspect.getdoc(static) or "")
        elif not isinstance(static, type) and (callable(static) or isinstance(static, (staticmethod, classmethod))):
            builder.method(name, getattr(obj, name))
        elif name in getattr(obj, "__dict__", {}) and isinstance(static, _PLAIN_VALUES):
            get, put = _attribute_accessors(obj, name)
            builder.prop(name, get, put, class_hints.get(name, Any), "")


class PlainAdapter:
    """The last resort: any object, through its public methods, properties and plain attributes."""

    name = "plain"
    extra: str | None = None

    def claims(self, obj: Any) -> bool:
        return True

    def adapt(self, obj: Any) -> Service:
        builder = ServiceBuilder(obj)
        add_members(builder, obj)
        return builder.build()
