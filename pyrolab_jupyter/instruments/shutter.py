"""A simulated shutter: the other end of an interlock ("the laser may turn on only while the shutter is closed")."""

from __future__ import annotations

from pyrolab_jupyter.core.service import Service, expose

__all__ = ["Shutter"]


class Shutter(Service):
    """A simulated beam shutter; starts closed."""

    def __init__(self, closed: bool = True) -> None:
        self._closed = bool(closed)

    @expose
    @property
    def closed(self) -> bool:
        """Whether the shutter blocks the beam."""
        return self._closed

    @closed.setter
    def closed(self, value: bool) -> None:
        self._closed = bool(value)

    @expose
    def open(self) -> None:
        """Let the beam through."""
        self._closed = False
        self.notify("closed", False)

    @expose
    def close(self) -> None:
        """Block the beam (also what happens when the hosting daemon stops)."""
        self._closed = True
        self.notify("closed", True)
