"""Services whose instances say when they are made and closed (a journal file), for the instance-mode tests."""

from __future__ import annotations

import uuid
from pathlib import Path

from pyrolab_jupyter import Service, expose


class Counter(Service):
    """Counts the calls its own instance served; writes ``made ID`` and ``closed ID`` to ``journal``."""

    def __init__(self, journal: str = "") -> None:
        self.ident = uuid.uuid4().hex[:8]
        self.count = 0
        self._journal = journal
        self._write("made")

    def _write(self, what: str) -> None:
        if self._journal:
            with Path(self._journal).open("a") as out:
                out.write(f"{what} {self.ident}\n")

    @expose
    def bump(self) -> int:
        self.count += 1
        return self.count

    @expose(readonly=True)
    def who(self) -> str:
        return self.ident

    @expose
    @property
    def total(self) -> int:
        return self.count

    def close(self) -> None:
        self._write("closed")


class SessionCounter(Counter):
    """The same, one per client by its class's own choice."""

    instance_mode = "session"
