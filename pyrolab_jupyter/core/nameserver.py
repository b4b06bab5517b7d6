"""The lab's phone book: a real Pyro5 nameserver plus a health monitor.

The nameserver object is Pyro5's own (plain ``locate_ns()`` clients and
``pyro5-nsc`` keep working) with one addition, ``pyrolab_services()``, which
answers ``lab.services()`` in one round trip. The monitor pings every
registered daemon each ``check_interval``, all daemons at once, and marks
their services offline (keeping the last known URI and time) or removes them.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import Any, Literal

from Pyro5.api import expose
from Pyro5.callcontext import current_context
from Pyro5.core import URI
from Pyro5.errors import PyroError
from Pyro5.nameserver import MemoryStorage, NameServer, SqlStorage

from pyrolab_jupyter.core.addresses import is_local, is_loopback
from pyrolab_jupyter.core.connections import TrackingDaemon
from pyrolab_jupyter.core.errors import AccessDenied
from pyrolab_jupyter.core.limits import Limits
from pyrolab_jupyter.core.naming import META_LAST_SEEN, META_STATUS, NAMESERVER_OBJECT, entry
from pyrolab_jupyter.core.nsguard import RegistryGuard, ping_daemon
from pyrolab_jupyter.core.security import Security, warn_if_exposed
from pyrolab_jupyter.core.settings import SETTINGS

__all__ = ["LabNameServer", "NameserverHost"]

log = logging.getLogger(__name__)

OnOffline = Literal["keep", "remove"]
_MAX_PARALLEL_PINGS = 32


def _refuse_unreachable(name: str, uri: Any) -> None:
    """A loopback URI sent from another PC would send every client to its own loopback: refuse it."""
    peer = current_context.client_sock_addr
    if not peer or not isinstance(peer, tuple):
        return  # registered from inside this process
    try:
        host = URI(str(uri)).host
    except PyroError:
        return  # Pyro5's own register() says what is wrong with it
    if host and is_loopback(host, lookup=False) and not is_local(str(peer[0])):
        raise AccessDenied(
            f"refused to register {name!r} at {uri}: a loopback address sent from {peer[0]}, another PC, "
            "would send every client to its own loopback; the daemon must listen on its PC's address "
            "(host: in the lab file, --host) or set advertise: HOST[:PORT] (--advertise)")


class LabNameServer(NameServer):  # type: ignore[misc]
    """Pyro5's NameServer that also remembers each entry's health and guards its writes (``RegistryGuard``)."""

    def __init__(self, storage: Any, guard: RegistryGuard | None = None) -> None:
        super().__init__(storage)
        self._health: dict[str, tuple[str, float | None]] = {}
        self.guard = guard or RegistryGuard(None)

    @expose
    def register(self, name: str, uri: Any, safe: bool = False, metadata: Any = None) -> None:
        _refuse_unreachable(name, uri)
        meta = {m for m in (metadata or ()) if not m.startswith((META_STATUS, META_LAST_SEEN))}
        with self.lock:
            current = self.storage.get(name) if isinstance(name, str) else None
        self.guard.check_register(name, uri, current[0] if current else None)  # may ping: outside the lock
        with self.lock:
            super().register(name, uri, safe, meta)
            self._health[name] = ("online", time.time())

    @expose
    def set_metadata(self, name: str, metadata: Any) -> None:
        self.guard.check_role(f"set_metadata {name!r}")
        super().set_metadata(name, metadata)

    @expose
    def remove(self, name: str | None = None, prefix: str | None = None, regex: str | None = None) -> int:
        self.guard.check_role("remove")
        with self.lock:
            before = set(self.storage)
            count: int = super().remove(name, prefix, regex)
            for gone in set(self._health) - set(self.storage):
                del self._health[gone]
            removed = sorted(before - set(self.storage))
        self.guard.removed(removed)
        return count

    @expose
    def pyrolab_services(self) -> list[dict[str, Any]]:
        """Every registration with status, last seen, class, description and lock holder."""
        with self.lock:
            items = self.storage.everything(return_metadata=True)
            health = dict(self._health)
        rows = []
        for name, (uri, metadata) in sorted(items.items()):
            if name == NAMESERVER_OBJECT:
                continue
            status, seen = health.get(name, ("unknown", None))  # not checked since this nameserver started
            rows.append(entry(name, uri, metadata or (), status, seen))
        return rows

    # used by the monitor, in this process only (underscore: not reachable remotely)

    def _mark(self, name: str, uri: str, alive: bool, on_offline: OnOffline) -> None:
        now = time.time()
        with self.lock:
            try:
                current_uri, metadata = self.storage[name]
            except KeyError:
                return
            if current_uri != uri:  # re-registered elsewhere meanwhile
                return
            status, seen = self._health.get(name, ("unknown", None))  # remembered from storage, not checked yet
            meta = {m for m in (metadata or ()) if not m.startswith((META_STATUS, META_LAST_SEEN))}
            if alive:
                self._health[name] = ("online", now)
                if status != "online":
                    log.info("%s is back online at %s", name, uri)
                    self.storage[name] = uri, meta
                return
            if status == "offline":
                return
            if on_offline == "remove":
                log.info("%s went offline; removing it", name)
                del self.storage[name]
                self._health.pop(name, None)
                return
            log.info("%s went offline (last seen %s)", name, time.ctime(seen) if seen else "never")
            self._health[name] = ("offline", seen)
            stamp = f"{seen:.3f}" if seen else ""
            self.storage[name] = uri, meta | {META_STATUS + "offline", META_LAST_SEEN + stamp}


class _Monitor:
    """Pings each registered daemon every ``interval`` seconds, concurrently."""

    def __init__(self, ns: LabNameServer, interval: float, on_offline: OnOffline) -> None:
        self.ns = ns
        self.interval = interval
        self.on_offline = on_offline
        self.timeout = min(max(0.2, interval * 0.5), 3.0)
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(_MAX_PARALLEL_PINGS, thread_name_prefix="pyrolab-ping")
        self._thread = threading.Thread(target=self._run, name="pyrolab-health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 2)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check_once()
            except Exception:
                log.exception("health check round failed")

    def _ping(self, location: str) -> bool:
        return ping_daemon(location, self.timeout, self.ns.guard.security)

    def check_once(self) -> None:
        """One round: ping every daemon at once, then record the answers."""
        with self.ns.lock:
            items = self.ns.storage.everything(return_metadata=False)
        by_location: dict[str, list[tuple[str, str]]] = {}
        for name, uri in items.items():
            if name == NAMESERVER_OBJECT:
                continue
            try:
                location = URI(uri).location
            except PyroError:
                continue
            by_location.setdefault(location, []).append((name, uri))
        futures = {self._pool.submit(self._ping, loc): loc for loc in by_location}
        done, _ = concurrent.futures.wait(futures, timeout=self.timeout * 2 + 1)
        for future, location in futures.items():
            alive = future in done and future.result()
            for name, uri in by_location[location]:
                self.ns._mark(name, uri, alive, self.on_offline)


def _storage(spec: str) -> Any:
    if spec == "memory":
        return MemoryStorage()
    if spec.startswith("sql:") and len(spec) > 4:
        return SqlStorage(spec[4:])
    raise ValueError(f"storage={spec!r}: expected 'memory' or 'sql:PATH'")


class NameserverHost:
    """A running nameserver and its monitor, in this process's background threads."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = SETTINGS.nameserver_port,
        check_interval: float = SETTINGS.check_interval,
        on_offline: OnOffline = "keep",
        storage: str = "memory",
        max_message: int | None = None,
        security: Security | None = None,
    ) -> None:
        if check_interval <= 0:
            raise ValueError(f"check_interval={check_interval!r}: must be a positive number of seconds")
        if on_offline not in ("keep", "remove"):
            raise ValueError(f"on_offline={on_offline!r}: expected 'keep' or 'remove'")
        self.nameserver = LabNameServer(_storage(storage), RegistryGuard(security))
        try:
            limits = Limits() if max_message is None else Limits(max_message=max_message)
            self.daemon = TrackingDaemon(host=host, port=port, limits=limits, security=security)
        except OSError as err:
            self.nameserver.storage.close()
            raise OSError(err.errno, f"cannot start a nameserver on {host}:{port}: {err.strerror}; "
                          "is one already running there? choose another --port") from err
        warn_if_exposed(host, security, f"the nameserver at {self.daemon.locationStr}")
        self.daemon.register(self.nameserver, NAMESERVER_OBJECT)
        self.uri = str(self.daemon.uriFor(self.nameserver))
        self.nameserver.register(NAMESERVER_OBJECT, self.uri, metadata={"class:Pyro5.nameserver.NameServer"})
        self.monitor = _Monitor(self.nameserver, check_interval, on_offline)
        self.check_interval = check_interval
        self.on_offline = on_offline
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """``host:port`` of this nameserver."""
        return str(self.daemon.locationStr)

    @property
    def alive(self) -> bool:
        """Serving right now (started and not stopped)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> NameserverHost:
        self._thread = threading.Thread(target=self.daemon.requestLoop, name=f"pyrolab-ns-{self.address}",
                                        daemon=True)
        self._thread.start()
        self.monitor.start()
        return self

    def stop(self) -> None:
        """Stop checking and serving; also closes connections already accepted."""
        self.monitor.stop()
        self.daemon.shutdown()
        self.daemon.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.nameserver.storage.close()

    def __enter__(self) -> NameserverHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
