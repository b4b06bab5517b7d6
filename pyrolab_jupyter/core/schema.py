"""A service's description (JSON Schema 2020-12) and its call validators, both from annotations.

pydantic generates the schema and validates; this module only decides the
layout of the description and turns pydantic's errors into messages that name
the parameter, the value and the bound (``mw=99 is above the maximum 50 (mW)``).
The description is what panels, the sidebar and client-side ``help()`` read.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
import pydantic
from pydantic.json_schema import WithJsonSchema

from pyrolab_jupyter.core.errors import InvalidArgument

__all__ = ["JSON_SCHEMA_DIALECT", "ServiceSchema", "class_path"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_NDARRAY_SCHEMA = {"type": "array", "x-ndarray": True}


def _as_ndarray(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot be read as an array ({err})") from err


_NDArray = Annotated[
    np.ndarray, pydantic.PlainValidator(_as_ndarray), WithJsonSchema(_NDARRAY_SCHEMA)
]


def _pydantic_type(annotation: Any) -> Any:
    """Swap numpy arrays (also inside unions, lists, dicts and Annotated) for a type pydantic handles."""
    if annotation is inspect.Parameter.empty:
        return Any
    origin = typing.get_origin(annotation)
    if annotation is np.ndarray or origin is np.ndarray:
        return _NDArray
    args = typing.get_args(annotation)
    if origin is Annotated:
        inner, *metadata = args
        return Annotated[(_pydantic_type(inner), *metadata)]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_pydantic_type(a) for a in args)]  # noqa: UP007 (built at run time)
    if origin in (list, tuple, dict, set, frozenset) and args:
        return origin[tuple(a if a is Ellipsis else _pydantic_type(a) for a in args)]
    return annotation


def class_path(cls: type) -> str:
    """``module:QualName``, the form lab files and ``start_daemon`` use."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _inline_refs(schema: Any, defs: Mapping[str, Any]) -> Any:
    """Replace ``$ref``s into ``$defs`` by their target so each parameter stands alone."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = dict(defs[ref.removeprefix("#/$defs/")])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return _inline_refs({**target, **rest}, defs)
        return {k: _inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(v, defs) for v in schema]
    return schema


def _json_schema(adapter: pydantic.TypeAdapter[Any]) -> dict[str, Any]:
    schema = adapter.json_schema()
    inlined: dict[str, Any] = _inline_refs(schema, schema.get("$defs", {}))
    return inlined


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else ""


def _exposure_keys(exposure: Any) -> dict[str, Any]:
    """The ``expose`` keywords a description carries, only where set (so plain members stay plain)."""
    keys: dict[str, Any] = {}
    if exposure.changes is not None:
        keys["changes"] = list(exposure.changes)
    if exposure.poll is not None:
        keys["poll"] = exposure.poll
    if exposure.stop:
        keys["stop"] = True
    return keys


class _Call:
    """Validator and description of one exposed method."""

    def __init__(self, name: str, func: Any, exposure: Any) -> None:
        readonly: bool = exposure.readonly
        self.name = name
        self.signature = inspect.signature(func)
        hints = typing.get_type_hints(func, include_extras=True)
        params = list(self.signature.parameters.values())[1:]  # drop self
        self.signature = self.signature.replace(parameters=params)
        fields: dict[str, Any] = {}
        self.var_names: set[str] = set()
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                self.var_names.add(p.name)
                continue
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (_pydantic_type(hints.get(p.name, p.empty)), default)
        simple = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        self.plain_names: dict[str, None] | None = dict.fromkeys(p.name for p in params) if simple else None
        self.model = pydantic.create_model(
            f"{name}_arguments",
            __config__=pydantic.ConfigDict(arbitrary_types_allowed=True),
            **fields,
        )
        returns = hints.get("return", Any)
        self.returns = pydantic.TypeAdapter(
            Any if returns is type(None) else _pydantic_type(returns),
            config=pydantic.ConfigDict(arbitrary_types_allowed=True),
        )
        params_schema = self.model.model_json_schema()
        params_schema = _inline_refs(params_schema, params_schema.get("$defs", {}))
        params_schema.pop("title", None)
        for prop in params_schema.get("properties", {}).values():
            prop.pop("title", None)
        self.param_schemas: dict[str, Any] = params_schema.get("properties", {})
        self.description = {
            "description": _doc(func),
            "readonly": readonly,
            "parameters": params_schema,
            "returns": {"type": "null"} if returns is type(None) else _json_schema(self.returns),
            **_exposure_keys(exposure),
        }
        self.readonly = readonly
        self.changes: tuple[str, ...] | None = exposure.changes
        self.stop: bool = exposure.stop

    def validate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Checked ``(args, kwargs)`` for the method, or ``InvalidArgument`` naming what is wrong."""
        names = self.plain_names
        if names is not None and len(args) <= len(names) and (not kwargs or kwargs.keys() <= names.keys()):
            data = dict(zip(names, args))
            if not kwargs or not data.keys() & kwargs.keys():  # the hot path: no signature binding needed
                if kwargs:
                    data.update(kwargs)
                try:
                    fields = self.model.__pydantic_validator__.validate_python(data).__dict__
                except pydantic.ValidationError as err:
                    raise InvalidArgument(_explain(self.name, err, data, self.param_schemas)) from None
                return (), {key: fields[key] for key in data}
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as err:
            raise InvalidArgument(f"{self.name}(): {err}") from None
        checked = {k: v for k, v in bound.arguments.items() if k not in self.var_names}
        try:
            model = self.model.model_validate(checked)
        except pydantic.ValidationError as err:
            raise InvalidArgument(_explain(self.name, err, checked, self.param_schemas)) from None
        for key in checked:
            bound.arguments[key] = getattr(model, key)
        return bound.args, bound.kwargs


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _unit(schema: Mapping[str, Any] | None) -> str:
    unit = (schema or {}).get("x-unit")
    return f" ({unit})" if unit else ""


def _explain(
    method: str,
    err: pydantic.ValidationError,
    values: Mapping[str, Any],
    schemas: Mapping[str, Any],
) -> str:
    """One line per broken argument: parameter, value received, constraint broken."""
    lines = []
    for item in err.errors(include_url=False):
        loc = item.get("loc") or ("value",)
        param = str(loc[0])
        value = values.get(param, item.get("input"))
        unit = _unit(schemas.get(param))
        ctx = item.get("ctx") or {}
        kind = item["type"]
        if kind == "missing":
            lines.append(f"{method}(): missing required argument {param!r}")
        elif kind == "less_than_equal":
            lines.append(f"{method}(): {param}={value!r} is above the maximum {_num(ctx['le'])}{unit}")
        elif kind == "less_than":
            lines.append(f"{method}(): {param}={value!r} is not below {_num(ctx['lt'])}{unit}")
        elif kind == "greater_than_equal":
            lines.append(f"{method}(): {param}={value!r} is below the minimum {_num(ctx['ge'])}{unit}")
        elif kind == "greater_than":
            lines.append(f"{method}(): {param}={value!r} is not above {_num(ctx['gt'])}{unit}")
        elif kind in ("literal_error", "enum"):
            lines.append(f"{method}(): {param}={value!r} is not one of {ctx.get('expected')}")
        else:
            where = ".".join(str(x) for x in loc)
            lines.append(f"{method}(): {where}={value!r}: {item['msg'].lower()}")
    return "; ".join(lines)


class _Property:
    """Validator and description of one exposed property."""

    def __init__(self, name: str, prop: property, exposure: Any) -> None:
        self.name = name
        self.writable = prop.fset is not None
        self.changes: tuple[str, ...] | None = exposure.changes
        self.poll: float | None = exposure.poll
        config = pydantic.ConfigDict(arbitrary_types_allowed=True)
        getter = typing.get_type_hints(prop.fget, include_extras=True).get("return", Any)
        annotation = getter
        if prop.fset is not None:
            setter_hints = typing.get_type_hints(prop.fset, include_extras=True)
            setter_hints.pop("return", None)
            if setter_hints:
                annotation = next(iter(setter_hints.values()))
        self.adapter = pydantic.TypeAdapter(_pydantic_type(annotation), config=config)
        # the getter says what is read (unit), the setter what may be written (bounds): show both
        read_schema = _json_schema(pydantic.TypeAdapter(_pydantic_type(getter), config=config))
        self.schema = {**read_schema, **_json_schema(self.adapter)}
        self.description = {
            "description": _doc(prop.fget),
            "readonly": not self.writable,
            "schema": self.schema,
            **_exposure_keys(exposure),
        }

    def validate(self, value: Any) -> Any:
        try:
            return self.adapter.validate_python(value)
        except pydantic.ValidationError as err:
            message = _explain(self.name, err, {self.name: value}, {self.name: self.schema})
            raise InvalidArgument(message.replace(f"{self.name}(): value=", f"{self.name}=")) from None


class ServiceSchema:
    """Everything the daemon needs to describe and guard one service class."""

    def __init__(self, cls: type, members: Mapping[str, tuple[Any, Any]]) -> None:
        """``members``: ``{name: (method_or_property, Exposure)}`` as ``exposed_members`` gives."""
        self.methods: dict[str, _Call] = {}
        self.properties: dict[str, _Property] = {}
        for name, (member, exposure) in members.items():
            if isinstance(member, property):
                self.properties[name] = _Property(name, member, exposure)
            else:
                self.methods[name] = _Call(name, member, exposure)
        self.stop_method: str | None = next((n for n, c in self.methods.items() if c.stop), None)
        self.description: dict[str, Any] = {
            "$schema": JSON_SCHEMA_DIALECT,
            "class": class_path(cls),
            "description": _doc(cls),
            "methods": {n: c.description for n, c in self.methods.items()},
            "properties": {n: p.description for n, p in self.properties.items()},
        }


def plain(value: Any) -> Any:
    """Enums leave the daemon as their value so any client can read them."""
    if isinstance(value, enum.Enum):
        return value.value
    return value
