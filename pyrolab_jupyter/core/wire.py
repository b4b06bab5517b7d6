"""Teach Pyro5's deserializers this library's error types, once, when a client first connects.

Pyro5 rebuilds only builtin and Pyro5 exceptions; without this a daemon's
``InvalidArgument`` would arrive as a ``SerializeError``. Registration adds
entries to Pyro5's class table; it changes no ``config`` and happens on first
use, never at import.
"""

from __future__ import annotations

import threading
from typing import Any

from Pyro5.api import register_dict_to_class
from Pyro5.serializers import SerializerBase

from pyrolab_jupyter.core import errors

__all__ = ["BULK", "HOLDS_LOCK", "WAIT", "register_error_types"]

WAIT = "PLTO"  # annotation: seconds the caller waits for an answer (ASCII)
HOLDS_LOCK = "PLCK"  # annotation: the calling process believes it holds the service's lock
BULK = "PLBA"  # annotation: the caller fetches large arrays out of band (core.bulk)

_done = False
_mutex = threading.Lock()


def _rebuild(classname: str, data: dict[str, Any]) -> BaseException:
    kind = getattr(errors, classname.rsplit(".", 1)[-1])
    err: BaseException = SerializerBase.make_exception(kind, data)
    return err


def register_error_types() -> None:
    global _done
    with _mutex:
        if _done:
            return
        for name in errors.__all__:
            register_dict_to_class(f"{errors.__name__}.{name}", _rebuild)
        _done = True
