"""Serve a QCoDeS instrument: parameters as properties, functions and driver methods as methods, ``snapshot()``.

A parameter's unit becomes ``x-unit``, its label the schema ``title``, and its
validator a range (``Numbers``, ``Ints``) or a list of choices (``Enum``,
``Bool``); get-only parameters are read-only properties and set-only ones are
``writeOnly`` (reading gives the last value set). Channels and other
submodules are served in the same service under dotted names:
``A.temperature``, ``A.log_my_name`` (``remote.A.temperature`` on the client).
``snapshot()`` answers QCoDeS' snapshot as JSON data, its ``__class__`` keys as ``class``.
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any, Union

import numpy as np

from pyrolab_jupyter.adapters.builder import SchemaExtra, ServiceBuilder, number_annotation
from pyrolab_jupyter.adapters.choices import choices_annotation
from pyrolab_jupyter.adapters.registry import require_extra
from pyrolab_jupyter.core.service import Service, Unit

__all__ = ["QCoDeSAdapter"]


def _framework(cls: type) -> bool:
    """QCoDeS' own base classes (not a driver's): their members are machinery, not the instrument's API."""
    module = cls.__module__
    return cls is object or (module.startswith("qcodes.") and not module.startswith("qcodes.instrument_drivers."))


def _value_type(vals: Any, validators: Any) -> Any:
    """The annotation a QCoDeS validator stands for; ``Any`` for those with no equivalent."""
    if isinstance(vals, validators.Enum):
        return choices_annotation(vals.values)
    if isinstance(vals, validators.OnOff):
        return choices_annotation(["on", "off"])
    if isinstance(vals, validators.Bool):
        return bool
    if isinstance(vals, validators.Ints):
        return number_annotation(int, vals.min_value, vals.max_value)
    if isinstance(vals, validators.Numbers):
        return number_annotation(float, vals.min_value, vals.max_value)
    if isinstance(vals, validators.Strings):
        return str
    if isinstance(vals, validators.Arrays):
        return np.ndarray
    if isinstance(vals, validators.MultiType) and getattr(vals, "combiner", "OR") == "OR":
        parts = [_value_type(v, validators) for v in vals.validators]
        return Any if Any in parts else Union[tuple(parts)]  # noqa: UP007 (built at run time)
    return Any


def _annotation(param: Any, validators: Any) -> Any:
    """The annotation a parameter's validator, unit, label and gettability stand for."""
    extra: list[Any] = [Unit(param.unit)] if getattr(param, "unit", "") else []
    label = getattr(param, "label", "")
    if label and label != param.name:
        extra.append(SchemaExtra(title=label))
    if not getattr(param, "gettable", True):
        extra.append(SchemaExtra(writeOnly=True))
    kind = _value_type(getattr(param, "vals", None), validators)
    return Annotated[(kind, *extra)] if extra else kind


def _function_method(function: Any, validators: Any) -> tuple[Any, inspect.Signature]:
    """A QCoDeS ``Function`` as a callable with one named, typed parameter per argument it validates."""
    params = [inspect.Parameter(f"arg{i}", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                annotation=_annotation(_ArgInfo(v), validators))
              for i, v in enumerate(getattr(function, "_args", ()))]
    signature = inspect.Signature(params)

    def call(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        return function(*bound.args)

    return call, signature


class _ArgInfo:
    """What ``_annotation`` reads of a parameter, for a function argument known only by its validator."""

    name = ""
    unit = ""
    label = ""
    gettable = True

    def __init__(self, vals: Any) -> None:
        self.vals = vals


class QCoDeSAdapter:
    """QCoDeS instruments (``qcodes.instrument.InstrumentBase`` and its subclasses)."""

    name = "qcodes"
    extra: str | None = "qcodes"

    def claims(self, obj: Any) -> bool:
        return any(k.__module__.split(".")[0] == "qcodes" for k in type(obj).__mro__) \
            and hasattr(obj, "parameters") and hasattr(obj, "submodules")

    def adapt(self, obj: Any) -> Service:
        require_extra("qcodes", self.extra)
        import qcodes.validators as validators
        from qcodes.instrument import ChannelTuple
        from qcodes.utils import NumpyJSONEncoder

        builder = ServiceBuilder(obj)
        seen: set[int] = set()

        def add_module(module: Any, prefix: str) -> None:
            if id(module) in seen:
                return
            seen.add(id(module))
            for pname, param in module.parameters.items():
                get = param.get if param.gettable else param.get_latest
                builder.prop(prefix + pname, get, param.set if param.settable else None,
                             _annotation(param, validators), _doc(param))
            for fname, function in getattr(module, "functions", {}).items():
                call, signature = _function_method(function, validators)
                builder.method(prefix + fname, call, signature, {}, inspect.getdoc(function) or "")
            for cls in type(module).__mro__:
                if _framework(cls):
                    continue
                for mname, member in vars(cls).items():
                    if inspect.isfunction(member) and not mname.startswith("_"):
                        builder.method(prefix + mname, getattr(module, mname))
            for sname, sub in module.submodules.items():
                if isinstance(sub, ChannelTuple):
                    for channel in sub:
                        add_module(channel, f"{prefix}{sname}.{channel.short_name}.")
                else:
                    add_module(sub, f"{prefix}{sname}.")

        add_module(obj, "")

        def snapshot(update: bool = False) -> dict[str, Any]:
            """The instrument's QCoDeS snapshot (parameters, their values and metadata), as JSON data."""
            text = json.dumps(obj.snapshot(update=update), cls=NumpyJSONEncoder)
            state: dict[str, Any] = json.loads(text, object_hook=_no_class_key)
            return state

        builder.method("snapshot", snapshot, readonly=True)
        return builder.build()


def _no_class_key(item: dict[str, Any]) -> dict[str, Any]:
    """QCoDeS' ``__class__`` key as ``class``: Pyro5's serializers read a ``__class__`` key as an object to rebuild."""
    if "__class__" in item:
        item["class"] = item.pop("__class__")
    return item


def _doc(param: Any) -> str:
    label = getattr(param, "label", "") or param.name
    unit = f" ({param.unit})" if getattr(param, "unit", "") else ""
    own = (getattr(param, "docstring", None) or "").strip()
    return f"{label}{unit}" + (f". {own}" if own else "")
