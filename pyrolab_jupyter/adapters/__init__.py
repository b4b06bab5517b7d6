"""Serve drivers a lab already has: plain objects, QCoDeS, PyMeasure and PyroLab services, and plug-ins.

``adapt(obj)`` turns any object into a ``Service`` (a native one is returned as
is); ``start_daemon``, ``pyrolab daemon``, ``%pyrolab daemon start`` and the lab
file call it for anything that is not a ``Service``. Depends on ``core`` only;
each driver framework is imported only when an object of it is served.
"""

from __future__ import annotations

from pyrolab_jupyter.adapters.builder import SchemaExtra, ServiceBuilder
from pyrolab_jupyter.adapters.registry import ENTRY_POINT_GROUP, Adapter, adapt, adapters, find_adapter

__all__ = ["ENTRY_POINT_GROUP", "Adapter", "SchemaExtra", "ServiceBuilder", "adapt", "adapters", "find_adapter"]
