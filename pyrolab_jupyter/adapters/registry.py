"""Which adapter serves an object: entry points first, then the built-in ones, the plain-object adapter last.

A third party adds an adapter without touching this project by declaring an
entry point in the group ``pyrolab_jupyter.adapters`` whose target has
``claims(obj) -> bool`` and ``adapt(obj) -> Service``; the entry point's name is
what a lab file's ``adapter:`` refers to.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
from typing import Any, Protocol, runtime_checkable

from pyrolab_jupyter.core.errors import ConfigError
from pyrolab_jupyter.core.service import Service
from pyrolab_jupyter.core.suggest import import_path

__all__ = ["ENTRY_POINT_GROUP", "Adapter", "adapt", "adapters", "find_adapter", "require_extra"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "pyrolab_jupyter.adapters"

# name → the adapter (module:attribute); this order is the order of consultation
_BUILTIN = {
    "qcodes": "pyrolab_jupyter.adapters.qcodes_driver:QCoDeSAdapter",
    "pymeasure": "pyrolab_jupyter.adapters.pymeasure_driver:PyMeasureAdapter",
    "pyrolab": "pyrolab_jupyter.adapters.pyrolab_service:PyroLabAdapter",
    "plain": "pyrolab_jupyter.adapters.plain:PlainAdapter",  # claims everything: keep it last
}


@runtime_checkable
class Adapter(Protocol):
    """What an adapter (an entry point's target) offers."""

    def claims(self, obj: Any) -> bool: ...
    def adapt(self, obj: Any) -> Service: ...


def require_extra(package: str, extra: str | None) -> None:
    """``ConfigError`` naming the extra to install when ``package`` is missing."""
    if importlib.util.find_spec(package) is None:
        hint = f"pip install 'pyrolab-jupyter[{extra}]'" if extra else f"pip install {package}"
        raise ConfigError(f"serving this object needs {package}, which is not installed: {hint}")


def _load(target: str) -> Any:
    found = import_path(target)
    return found() if isinstance(found, type) else found


def _entry_points() -> list[tuple[str, Any]]:
    loaded = []
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            found = point.load()
        except Exception as err:  # one broken plug-in must not stop the others
            log.warning("adapter entry point %r (%s) cannot be loaded: %s", point.name, point.value, err)
            continue
        adapter = found() if isinstance(found, type) else found
        if not (callable(getattr(adapter, "claims", None)) and callable(getattr(adapter, "adapt", None))):
            log.warning("adapter entry point %r (%s) has no claims()/adapt(); ignored", point.name, point.value)
            continue
        loaded.append((point.name, adapter))
    return loaded


def adapters() -> list[tuple[str, Any]]:
    """``(name, adapter)`` in the order they are consulted: entry points, built-ins, plain last."""
    return [*_entry_points(), *((name, _load(target)) for name, target in _BUILTIN.items())]


def find_adapter(obj: Any, name: str | None = None) -> tuple[str, Any]:
    """The adapter named ``name``, else the first that claims ``obj``."""
    found = adapters()
    if name is not None:
        for known, adapter in found:
            if known == name:
                return known, adapter
        raise ConfigError(f"no adapter named {name!r}; known: {', '.join(n for n, _ in found)} "
                          f"(third-party adapters register in the entry-point group {ENTRY_POINT_GROUP!r})")
    for known, adapter in found:
        try:
            if adapter.claims(obj):
                return known, adapter
        except Exception as err:  # a plug-in's claims() that raises does not claim
            log.warning("adapter %r: claims() raised %s: %s", known, type(err).__name__, err)
    raise AssertionError("the plain-object adapter claims everything")


def adapt(obj: Any, adapter: str | None = None) -> Service:
    """``obj`` as a ``Service``: itself when it is one, else through ``adapter`` or the first that claims it."""
    if isinstance(obj, Service):
        return obj
    name, chosen = find_adapter(obj, adapter)
    service = chosen.adapt(obj)
    if not isinstance(service, Service):
        raise ConfigError(f"adapter {name!r} returned {type(service).__qualname__}, not a pyrolab_jupyter.Service")
    return service
