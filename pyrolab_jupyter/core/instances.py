"""Instance modes: which service object serves a call.

``single`` (the default): one object for everyone, calls serialised unless it
is thread-safe — an instrument. ``session``: one object per client, made on
its first call and ``close()``d when the client's last connection goes — a
per-user computation. ``percall``: a fresh object for every call, closed after
it — stateless work. A client is a client process of this library (its
identity from the handshake), so a ``RemoteService`` used from several threads
still sees one instance; a plain Pyro5 client is one client per connection.

Locks apply to the service name in every mode; the description is the
class's (the daemon's template instance, never called by clients in the other
modes).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol, cast

from pyrolab_jupyter.core.errors import ConfigError, ServiceBusy

__all__ = ["INSTANCE_MODES", "InstanceMode", "Instances", "instance_mode_of"]

log = logging.getLogger(__name__)

InstanceMode = Literal["single", "session", "percall"]
INSTANCE_MODES: tuple[InstanceMode, ...] = ("single", "session", "percall")
_MAX_SESSIONS = 256  # session instances one service keeps at once; a client beyond that is told ServiceBusy


class _Gate(Protocol):
    def enter(self, member: str, caller: Callable[[], str]) -> Any: ...


def instance_mode_of(cls: type, chosen: str | None = None, where: str = "") -> InstanceMode:
    """The mode asked for (the lab file's ``instance_mode:``), else the class's ``instance_mode``, else single."""
    mode = chosen if chosen is not None else getattr(cls, "instance_mode", "single")
    if mode not in INSTANCE_MODES:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}instance_mode={mode!r}: expected one of {', '.join(INSTANCE_MODES)}")
    return cast(InstanceMode, mode)


class Instances:
    """The objects behind one service name, by mode; each session object has its own gate."""

    def __init__(self, name: str, mode: InstanceMode, factory: Callable[[], Any],
                 gate: Callable[[bool], _Gate]) -> None:
        self.name = name
        self.mode = mode
        self._factory = factory
        self._gate = gate
        self._percall_gate = gate(True)  # fresh objects share nothing; only how many run at once is bounded
        self._sessions: dict[str, tuple[Any, _Gate]] = {}
        self._mutex = threading.Lock()
        self._made = threading.Condition(self._mutex)
        self._making: set[str] = set()

    def _make(self) -> Any:
        return self._factory()

    @contextlib.contextmanager
    def use(self, client_id: str) -> Iterator[tuple[Any, _Gate]]:
        """The object (and its gate) that serves this client's call; a percall object is closed after it."""
        if self.mode == "session":
            yield self._session(client_id)
            return
        service = self._make()
        try:
            yield service, self._percall_gate
        finally:
            _close(self.name, service)

    def _session(self, client_id: str) -> tuple[Any, _Gate]:
        with self._made:
            while client_id in self._making:  # another thread of this client is making it: one object each
                self._made.wait(timeout=60)
            found = self._sessions.get(client_id)
            if found is not None:
                return found
            if len(self._sessions) >= _MAX_SESSIONS:
                raise ServiceBusy(f"{self.name}: {len(self._sessions)} clients each have their own instance "
                                  "(the most a session service keeps); try again when one disconnects")
            self._making.add(client_id)
        try:
            service = self._make()
            made = (service, self._gate(bool(getattr(service, "thread_safe", False))))
            with self._made:
                self._sessions[client_id] = made
            log.debug("%s: a session instance for client %s", self.name, client_id)
            return made
        finally:
            with self._made:
                self._making.discard(client_id)
                self._made.notify_all()

    def has_session(self, client_id: str) -> bool:
        with self._mutex:
            return client_id in self._sessions

    def client_gone(self, client_id: str) -> None:
        """The client's last connection closed: its session object is closed."""
        with self._mutex:
            found = self._sessions.pop(client_id, None)
        if found is not None:
            _close(self.name, found[0])

    def sessions(self) -> int:
        with self._mutex:
            return len(self._sessions)

    def close(self) -> None:
        """Close every session object (the daemon stops)."""
        with self._mutex:
            found, self._sessions = list(self._sessions.values()), {}
        for service, _ in found:
            _close(self.name, service)


def _close(name: str, service: Any) -> None:
    try:
        service.close()
    except Exception:
        log.exception("closing an instance of %s failed", name)
