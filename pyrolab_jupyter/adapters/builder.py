"""Build a real ``Service`` subclass around a foreign object, member by member.

Every adapter ends here: it says which methods and properties the object has
and what their values may be (annotations: ``Annotated[float, Range, Unit]``,
``Literal``, ...); the builder generates a class whose exposed members forward
to the object. Because the result is an ordinary ``Service``, the schema,
validation before the driver runs, locks and serialisation apply unchanged.
"""

from __future__ import annotations

import inspect
import logging
import math
import typing
import warnings
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import numpy as np
import pydantic

from pyrolab_jupyter.core.errors import ConfigError
from pyrolab_jupyter.core.servant import RESERVED_NAMES
from pyrolab_jupyter.core.service import Range, Service, expose, schema_of

__all__ = ["SchemaExtra", "ServiceBuilder", "number_annotation", "type_hints"]

log = logging.getLogger(__name__)

# members every Service has for the daemon's own use; a driver's member of that name is not forwarded
_SERVICE_OWN = frozenset(n for n in dir(Service) if not n.startswith("_"))
_CONFIG = pydantic.ConfigDict(arbitrary_types_allowed=True)


class SchemaExtra:
    """Extra JSON Schema keys for a value (``title``, ``writeOnly``, ...): ``Annotated[float, SchemaExtra(...)]``."""

    def __init__(self, **keys: Any) -> None:
        self.keys = keys

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema: dict[str, Any] = handler(core_schema)
        schema.update(self.keys)
        return schema

    def __repr__(self) -> str:
        return f"SchemaExtra({self.keys!r})"


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def number_annotation(kind: type, low: Any = None, high: Any = None, *extra: Any) -> Any:
    """``Annotated[kind, Range(low, high), *extra]``, dropping infinite or missing bounds."""
    lo, hi = _finite(low), _finite(high)
    metadata = [*([Range(lo, hi)] if lo is not None or hi is not None else []), *extra]
    return Annotated[(kind, *metadata)] if metadata else kind


def _usable(annotation: Any) -> Any:
    """The annotation if our schema can describe it, else ``Any`` (a driver's own classes, broken hints)."""
    if annotation is inspect.Parameter.empty:
        return Any
    if annotation is np.ndarray or annotation is None or annotation is type(None):
        return annotation
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pydantic.TypeAdapter(annotation, config=_CONFIG).json_schema()
    except Exception:  # pydantic raises several kinds for what it cannot describe
        return Any
    return annotation


def type_hints(func: Any) -> dict[str, Any]:
    """Type hints of a driver's callable; none when they cannot be resolved (forward refs to missing names)."""
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:
        return {}


class ServiceBuilder:
    """Collects members for one object, then ``build()`` returns a ``Service`` forwarding to it.

    Parameters
    ----------
    target:
        The object served. Its class names the service (``class`` in the description).
    doc:
        The service's description; the target class's docstring by default.
    close:
        Called when the daemon stops (release the instrument); ``target.close`` by default.
    """

    def __init__(self, target: Any, doc: str | None = None, close: Callable[[], Any] | None = None) -> None:
        self.target = target
        self.doc = inspect.getdoc(type(target)) if doc is None else doc
        self.close = close if close is not None else getattr(target, "close", None)
        self.namespace: dict[str, Any] = {}
        self.skipped: list[str] = []

    def _free(self, name: str) -> bool:
        if name.startswith("_") or name in RESERVED_NAMES or name in _SERVICE_OWN:
            self.skipped.append(name)
            return False
        return name not in self.namespace

    def method(
        self,
        name: str,
        func: Callable[..., Any],
        signature: inspect.Signature | None = None,
        hints: Mapping[str, Any] | None = None,
        doc: str | None = None,
        readonly: bool = False,
    ) -> None:
        """Expose ``func`` (already bound to the target) as method ``name``.

        ``signature`` and ``hints`` default to ``func``'s own; hints our schema
        cannot describe become untyped.
        """
        if not self._free(name):
            return
        try:
            sig = signature or inspect.signature(func)
        except (TypeError, ValueError):
            sig = inspect.Signature([inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                                     inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])
        found = dict(type_hints(func) if hints is None else hints)
        annotations = {p: _usable(found.get(p, inspect.Parameter.empty)) for p in sig.parameters}
        annotations["return"] = _usable(found.get("return", inspect.Parameter.empty))
        params = [p.replace(annotation=annotations[p.name]) for p in sig.parameters.values()]
        first = params[0].kind if params else inspect.Parameter.POSITIONAL_OR_KEYWORD
        self_kind = inspect.Parameter.POSITIONAL_ONLY if first is inspect.Parameter.POSITIONAL_ONLY \
            else inspect.Parameter.POSITIONAL_OR_KEYWORD

        def forward(self: Service, *args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        forward.__name__ = forward.__qualname__ = name
        forward.__doc__ = inspect.getdoc(func) if doc is None else doc
        forward.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[inspect.Parameter("self", self_kind), *params],
            return_annotation=annotations["return"])
        forward.__annotations__ = annotations
        self.namespace[name] = expose(readonly=readonly)(forward)

    def prop(
        self,
        name: str,
        get: Callable[[], Any],
        put: Callable[[Any], Any] | None = None,
        annotation: Any = Any,
        doc: str = "",
    ) -> None:
        """Expose a property read by ``get()`` and, when ``put`` is given, written by ``put(value)``."""
        if not self._free(name):
            return
        annotation = _usable(annotation)

        def fget(self: Service) -> Any:
            return get()

        fget.__name__ = name
        fget.__doc__ = doc
        fget.__annotations__ = {"return": annotation}
        fset = None
        if put is not None:
            setter = put

            def fset(self: Service, value: Any) -> None:
                setter(value)

            fset.__annotations__ = {"value": annotation, "return": None}
        self.namespace[name] = expose(property(fget, fset))

    def build(self) -> Service:
        """The ``Service`` instance; ``ConfigError`` if its description cannot be made."""
        cls = type(self.target)
        close = self.close

        def close_target(self: Service) -> None:
            if close is not None:
                close()

        namespace = {**self.namespace, "__doc__": self.doc, "__module__": cls.__module__,
                     "__qualname__": cls.__qualname__, "close": close_target}
        service_cls = type(cls.__name__, (Service,), namespace)
        try:
            with warnings.catch_warnings():  # defaults pydantic cannot show are left out of the schema
                warnings.simplefilter("ignore")
                schema_of(service_cls)  # built once here, so a problem shows now rather than on describe()
        except Exception as err:
            raise ConfigError(f"cannot describe {cls.__module__}.{cls.__qualname__} as a service: {err}") from err
        if self.skipped:
            log.info("%s: not served (names the service itself uses): %s", cls.__qualname__, ", ".join(self.skipped))
        service: Service = service_cls()
        return service
