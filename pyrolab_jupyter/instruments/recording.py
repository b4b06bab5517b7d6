"""A PyVISA conversation recorded as JSON lines: what ``pyrolab replay`` turns into a pyvisa-sim device.

``SessionRecorder`` wraps any PyVISA message-based resource: ``write``,
``query`` and ``read`` go to the instrument and into the file, one line per
exchange (``time``, ``resource``, ``kind``, ``command``, ``reply`` or
``error``, ``seconds``, the terminations); everything else (``timeout``,
terminations, ``close``) passes through. ``VisaInstrument(..., record=path)``
wraps its handle with it; a driver built on PyVISA elsewhere (a QCoDeS
instrument's ``visa_handle``) can be wrapped the same way.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Any

__all__ = ["SessionRecorder"]


class SessionRecorder:
    """A PyVISA resource that appends every exchange to a JSON-lines file; otherwise the resource itself."""

    def __init__(self, resource: Any, path: str | Path, name: str | None = None) -> None:
        import pyvisa  # only a PyVISA user has a resource to record

        set_ = object.__setattr__
        set_(self, "_resource", resource)
        set_(self, "_name", name or str(getattr(resource, "resource_name", "?")))
        set_(self, "_timeout_code", pyvisa.constants.StatusCode.error_timeout)
        set_(self, "_mutex", threading.Lock())
        try:
            recording: IO[str] = Path(path).open("a", encoding="utf-8", buffering=1)  # a line at a time
        except OSError as err:
            raise OSError(f"cannot record {self._name!r} to {str(path)!r}: {err.strerror or err}") from err
        set_(self, "_file", recording)

    def write(self, message: str, *args: Any, **kwargs: Any) -> Any:
        return self._exchange("write", message, lambda: self._resource.write(message, *args, **kwargs))

    def query(self, message: str, *args: Any, **kwargs: Any) -> Any:
        return self._exchange("query", message, lambda: self._resource.query(message, *args, **kwargs))

    def read(self, *args: Any, **kwargs: Any) -> Any:
        return self._exchange("read", None, lambda: self._resource.read(*args, **kwargs))

    def close(self) -> None:
        """Close the resource and the recording."""
        try:
            self._resource.close()
        finally:
            with self._mutex:
                self._file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resource, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._resource, name, value)

    def _exchange(self, kind: str, command: str | None, action: Any) -> Any:
        started = time.time()
        entry: dict[str, Any] = {"time": round(started, 6), "resource": self._name, "kind": kind}
        if command is not None:
            entry["command"] = command
        try:
            reply = action()
        except Exception as err:
            timed_out = getattr(err, "error_code", None) == self._timeout_code
            entry["error"] = "timeout" if timed_out else f"{type(err).__name__}: {err}"
            raise
        else:
            if kind != "write":
                entry["reply"] = str(reply)
            return reply
        finally:
            entry["seconds"] = round(time.time() - started, 6)
            entry["write_termination"] = str(self._resource.write_termination)
            entry["read_termination"] = str(self._resource.read_termination)
            with self._mutex:
                if not self._file.closed:
                    self._file.write(json.dumps(entry) + "\n")
