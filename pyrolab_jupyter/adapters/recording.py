"""Record the VISA dialogue of a QCoDeS or PyMeasure driver, for ``pyrolab replay`` (a service's ``record:``).

Each framework opens its PyVISA resource itself, so the driver class is
replaced by a same-named subclass that wraps that resource with
``SessionRecorder``: QCoDeS' as it is opened (the driver's start-up queries
are in the recording, and a replay must answer them for the driver to start),
PyMeasure's right after the driver is made (PyMeasure drivers rarely talk while
they are made). ``read_bytes``/``write_raw`` pass through unrecorded.
"""

from __future__ import annotations

from typing import Any

__all__ = ["recording_subclass"]


def recording_subclass(cls: type, path: str) -> type | None:
    """``cls`` whose VISA resource records every exchange to ``path``; None unless a QCoDeS or PyMeasure
    VISA driver (frameworks not installed count as not)."""
    from pyrolab_jupyter.instruments.recording import SessionRecorder

    driver: Any = cls  # the framework's members, unknown to the type checker
    qcodes = _base(cls, "qcodes.instrument", "VisaInstrument")
    if qcodes is not None:
        def _open_resource(self: Any, address: str, visalib: str | None) -> Any:
            resource = driver._open_resource(self, address, visalib)
            try:
                return SessionRecorder(resource, path, address)
            except OSError:
                resource.close()
                raise

        return _same_named(cls, {"_open_resource": _open_resource})
    pymeasure = _base(cls, "pymeasure.instruments", "Instrument")
    if pymeasure is not None:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            driver.__init__(self, *args, **kwargs)
            connection = getattr(self.adapter, "connection", None)
            if connection is None or not hasattr(connection, "query"):
                raise TypeError(f"{cls.__qualname__}: its adapter {type(self.adapter).__name__} does not talk "
                                "through PyVISA; only a VISA resource can be recorded")
            try:
                self.adapter.connection = SessionRecorder(connection, path)
            except OSError:
                connection.close()
                raise

        return _same_named(cls, {"__init__": __init__})
    return None


def _base(cls: type, module: str, name: str) -> type | None:
    """The framework's class ``module.name`` when ``cls`` derives from it, else None."""
    import importlib

    try:
        base = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return base if isinstance(cls, type) and issubclass(cls, base) else None


def _same_named(cls: type, members: dict[str, Any]) -> type:
    """A subclass that describes itself as ``cls`` (name, module), so the service's class reads the same."""
    return type(cls.__name__, (cls,), {**members, "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                       "__doc__": cls.__doc__})
