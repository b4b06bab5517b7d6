"""Serve PyroLab services (``pyrolab.service.Service``) and any class marked with Pyro5's ``@expose``, unchanged.

What Pyro5 itself would expose is served: the methods and properties marked
(or the whole class marked) with ``Pyro5.api.expose``, with their annotations
where present. So a PyroLab lab moves over service by service without editing
its drivers; one-way methods are served as ordinary calls (Pyro5 may reorder
one-way calls, which an instrument must not suffer).
"""

from __future__ import annotations

from typing import Any

from Pyro5.server import _get_exposed_members

from pyrolab_jupyter.adapters.builder import ServiceBuilder
from pyrolab_jupyter.adapters.plain import add_members
from pyrolab_jupyter.core.service import Service

__all__ = ["PyroLabAdapter"]


def _pyro_marked(cls: type) -> bool:
    if getattr(cls, "_pyroExposed", False):
        return True
    return any(getattr(getattr(m, "fget", m), "_pyroExposed", False) for k in cls.__mro__ for m in vars(k).values())


class PyroLabAdapter:
    """PyroLab 0.5 services and other classes exposed the Pyro5 way."""

    name = "pyrolab"
    extra: str | None = "pyrolab"

    def claims(self, obj: Any) -> bool:
        cls = type(obj)
        return any(k.__module__.split(".")[0] == "pyrolab" for k in cls.__mro__) or _pyro_marked(cls)

    def adapt(self, obj: Any) -> Service:
        exposed = _get_exposed_members(obj)
        builder = ServiceBuilder(obj)
        add_members(builder, obj, only=exposed["methods"] | exposed["attrs"] | exposed["oneway"])
        return builder.build()
