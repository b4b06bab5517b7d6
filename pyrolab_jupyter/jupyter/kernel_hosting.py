"""What this kernel hosts: one nameserver and any number of daemons, in background threads.

A framework-free manager (the ``%pyrolab`` magics are its thin front): it
remembers what runs, reuses it when a start cell runs again, and stops all of
it when the process exits (kernel shutdown and restart end the kernel
process; ``atexit`` unregisters the daemons and closes their sockets, and the
threads are daemon threads, so nothing hosted keeps the kernel alive). Log
records of hosted nameservers and daemons go to a ``KernelLog`` handler (kept
for ``%pyrolab status``), never into whichever cell happens to run.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import logging
import threading
from typing import Any, Literal

from pyrolab_jupyter.core.nameserver import NameserverHost
from pyrolab_jupyter.core.security import env_security
from pyrolab_jupyter.core.service import Service
from pyrolab_jupyter.hosting import DaemonHandle, start_daemon, start_nameserver

__all__ = ["HostedDaemon", "HostedNameserver", "KernelHosting", "KernelLog", "hosting"]

log = logging.getLogger(__name__)

_LOGGERS = ("pyrolab_jupyter", "Pyro5")


class KernelLog(logging.Handler):
    """Keeps the last log lines of hosted services, for ``%pyrolab status``.

    Without a handler of its own, a warning from a daemon thread would reach
    ``logging.lastResort``, i.e. ``sys.stderr``, which in a kernel is the
    output of whichever cell happens to run. Copying to ``sys.__stderr__``
    would not help: ipykernel captures file descriptor 2 and forwards it to
    the notebook too. Records still propagate to handlers the user configures.
    """

    def __init__(self, capacity: int = 200) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 -- logging.Handler's own idiom: report, never raise
            self.handleError(record)


@dataclasses.dataclass
class HostedNameserver:
    host: NameserverHost
    previous: str | None  # the kernel's nameserver setting before this one became current

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def alive(self) -> bool:
        return self.host.alive


@dataclasses.dataclass
class HostedDaemon:
    name: str
    handle: DaemonHandle
    origin: Any  # the class (or instance) it was built from, to tell a re-run from a change
    args: dict[str, Any]
    source: str  # how the user named it: "module:Class" or a notebook name
    nameserver: str | None

    @property
    def address(self) -> str:
        return self.handle.address

    @property
    def registered(self) -> bool:
        """Registered by now (the daemon keeps retrying while its nameserver is away)."""
        daemon = self.handle.daemon
        return self.nameserver is None or (daemon is not None and daemon.wait_registered(0))

    @property
    def uri(self) -> str:
        return self.handle.uris[self.name]

    @property
    def alive(self) -> bool:
        return self.handle.alive


class KernelHosting:
    """The nameserver and daemons this process hosts; thread-safe, stopped at exit."""

    def __init__(self) -> None:
        self.nameserver: HostedNameserver | None = None
        self.daemons: dict[str, HostedDaemon] = {}
        self.log = KernelLog()
        self._mutex = threading.RLock()
        self._installed = False

    def _install(self) -> None:
        """On first use: the exit hook and the log handler."""
        if self._installed:
            return
        self._installed = True
        atexit.register(self.stop_all)
        for name in _LOGGERS:
            logging.getLogger(name).addHandler(self.log)

    # nameserver

    def start_nameserver(self, host: str, port: int, check_interval: float,
                         on_offline: Literal["keep", "remove"], previous: str | None) -> tuple[HostedNameserver, bool]:
        """The hosted nameserver and whether it was started now (False: one already runs here)."""
        with self._mutex:
            if self.nameserver is not None and self.nameserver.alive:
                return self.nameserver, False
            self._install()
            ns = start_nameserver(host=host, port=port, check_interval=check_interval, on_offline=on_offline,
                                  security=env_security())
            self.nameserver = HostedNameserver(ns, previous)
            log.info("nameserver started at %s", ns.address)
            return self.nameserver, True

    def stop_nameserver(self) -> HostedNameserver | None:
        """Stop the hosted nameserver; returns what was stopped (None if nothing ran)."""
        with self._mutex:
            hosted, self.nameserver = self.nameserver, None
        if hosted is not None:
            hosted.host.stop()
            log.info("nameserver at %s stopped", hosted.address)
        return hosted

    # daemons

    def start_daemon(self, name: str, service: Service, origin: Any, args: dict[str, Any], source: str,
                     nameserver: str | None, host: str, port: int, heartbeat: float,
                     register_timeout: float = 3.0) -> HostedDaemon:
        """Host ``service`` as ``name`` in a daemon of its own; the caller checks ``find`` first."""
        with self._mutex:
            if name in self.daemons:
                raise ValueError(f"this kernel already hosts a service named {name!r}")
            self._install()
            handle = start_daemon({name: service}, nameserver=nameserver, host=host, port=port,
                                  heartbeat=heartbeat, register_timeout=register_timeout,
                                  security=env_security())  # under TLS, a daemon certificate (OU=daemon)
            hosted = HostedDaemon(name, handle, origin, dict(args), source, nameserver)
            self.daemons[name] = hosted
            log.info("daemon for %s started at %s", name, handle.address)
            return hosted

    def find(self, key: str) -> list[HostedDaemon]:
        """Hosted daemons whose service name or address is ``key``."""
        with self._mutex:
            return [d for d in self.daemons.values() if key in (d.name, d.address)]

    def stop_daemons(self, keys: list[str] | None = None) -> list[HostedDaemon]:
        """Stop the daemons named (by service name or address), or all; returns those stopped."""
        with self._mutex:
            if keys is None:
                chosen = list(self.daemons.values())
            else:
                chosen = [d for key in keys for d in self.find(key)]
            for hosted in chosen:
                self.daemons.pop(hosted.name, None)
        for hosted in chosen:
            hosted.handle.stop()
            log.info("daemon for %s at %s stopped", hosted.name, hosted.address)
        return chosen

    def stop_all(self) -> None:
        """Daemons first (they unregister from the nameserver), then the nameserver."""
        self.stop_daemons()
        self.stop_nameserver()

    @property
    def empty(self) -> bool:
        return self.nameserver is None and not self.daemons


hosting = KernelHosting()
"""The one registry of this process."""
