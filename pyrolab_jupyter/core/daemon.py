"""LabDaemon: hosts services on one port, enforces their locks, registers them and keeps them registered.

Registration is pushed: at start, on every heartbeat (so a restarted
nameserver repopulates itself) and whenever a lock changes (so
``lab.services()`` shows the holder at once). A nameserver that is not up yet
is retried on each heartbeat; the daemon never dies for want of one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from Pyro5.errors import PyroError

from pyrolab_jupyter.core.addresses import is_local, is_loopback, is_wildcard, parse_advertise, route_address
from pyrolab_jupyter.core.config import parse_address
from pyrolab_jupyter.core.connections import TrackingDaemon
from pyrolab_jupyter.core.errors import AccessDenied, ConfigError
from pyrolab_jupyter.core.locks import ClientInfo, LockTable
from pyrolab_jupyter.core.naming import (
    META_CLASS,
    META_DESCRIPTION,
    META_LOCKED_BY,
    META_SERVICE,
    nameserver_uri,
)
from pyrolab_jupyter.core.proxies import new_proxy
from pyrolab_jupyter.core.publish import LOCK_PROPERTY, Publisher
from pyrolab_jupyter.core.schema import class_path
from pyrolab_jupyter.core.servant import make_servant
from pyrolab_jupyter.core.service import Service

__all__ = ["LabDaemon"]

log = logging.getLogger(__name__)

_TICK = 0.2  # how often leases are checked for expiry
_NS_TIMEOUT = 3.0


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _advertised(host: str, advertise: str | None, nameserver: str | None) -> tuple[str | None, int | None]:
    """The ``(nathost, natport)`` Pyro5 should put in URIs, or ``(None, None)`` for the bound address.

    ``advertise`` wins; a wildcard bind advertises the interface that routes to
    the nameserver. A loopback address is refused when the nameserver is on
    another PC: nobody there could reach it.
    """
    ns_host = parse_address(nameserver.rpartition("@")[2])[0] if nameserver else None
    nathost: str | None = None
    natport: int | None = None
    if advertise:
        nathost, natport = parse_advertise(advertise)
    elif is_wildcard(host) and ns_host is not None:
        nathost, natport = route_address(ns_host), 0
        if nathost is None:
            raise ConfigError(f"the daemon listens on {host or 'every interface'} but no interface routes to the "
                              f"nameserver at {ns_host}; set advertise: HOST (--advertise) to the address "
                              "clients reach it at")
    if ns_host is not None and is_loopback(nathost or host) and not is_local(ns_host):
        raise ConfigError(
            f"the daemon would register a loopback address ({nathost or host}) with the nameserver at {ns_host}, "
            "which is on another PC: nobody there can reach it; listen on this PC's address (host: in the lab "
            "file, --host) or set advertise: HOST[:PORT] (--advertise) to the address clients reach it at")
    return nathost, natport


class LabDaemon(TrackingDaemon):
    """A Pyro5 daemon for lab services.

    Parameters
    ----------
    host, port:
        Where to listen; ``port=0`` picks a free port.
    nameserver:
        ``host:port`` or a Pyro URI of the nameserver to register with, or
        ``None`` to register nowhere.
    heartbeat:
        Seconds between re-registrations.
    advertise:
        ``host[:port]`` to put in URIs instead of the bound address (NAT, a
        forwarded port). A wildcard ``host`` without it advertises the
        interface that routes to the nameserver.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        nameserver: str | None = None,
        heartbeat: float = 5.0,
        advertise: str | None = None,
    ) -> None:
        if heartbeat <= 0:
            raise ValueError(f"heartbeat={heartbeat!r}: must be a positive number of seconds")
        ns_uri = nameserver_uri(nameserver) if nameserver else None
        nathost, natport = _advertised(host, advertise, ns_uri)
        super().__init__(host=host, port=port, nathost=nathost, natport=natport)
        self.locks = LockTable()
        self.nameserver = ns_uri
        self.heartbeat = heartbeat
        self._hosted: dict[str, tuple[Service, str, str]] = {}  # name -> (service, uri, description)
        self._publisher = Publisher()
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._serve_thread: threading.Thread | None = None
        self._beat_thread: threading.Thread | None = None
        self._registered_once = threading.Event()
        self._ns_warned = False

    # hosting

    def add(self, name: str, service: Service, description: str | None = None) -> str:
        """Host ``service`` as ``name``; returns its URI."""
        if not isinstance(service, Service):
            raise TypeError(f"{name}: {type(service).__qualname__} is not a pyrolab_jupyter.Service subclass")
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"service name {name!r}: must be non-empty and contain no spaces")
        if name in self._hosted:
            raise ValueError(f"service name {name!r} is already hosted by this daemon")
        servant = make_servant(name, service, self, description)
        uri = str(self.register(servant, objectId=name))
        service._pyrolab_publish = lambda prop, value: self.publish(name, prop, value)
        text = description or _first_line(servant._description.get("description", ""))
        self._hosted[name] = (service, uri, text)
        if self._beat_thread is not None:
            self._dirty.set()
        return uri

    @property
    def uris(self) -> dict[str, str]:
        return {name: uri for name, (_, uri, _) in self._hosted.items()}

    @property
    def address(self) -> str:
        """``host:port`` clients reach this daemon at (the advertised one, when set)."""
        host, port = (self.natLocationStr or self.locationStr).rsplit(":", 1)
        return f"{host}:{port}"

    def start(self) -> None:
        """Serve in background threads and register with the nameserver."""
        self._serve_thread = threading.Thread(target=self.requestLoop, name=f"pyrolab-daemon-{self.address}",
                                              daemon=True)
        self._beat_thread = threading.Thread(target=self._beat, name=f"pyrolab-heartbeat-{self.address}",
                                             daemon=True)
        self._serve_thread.start()
        self._beat_thread.start()

    def wait_registered(self, timeout: float) -> bool:
        """Block until the first registration succeeded (True) or ``timeout`` passed."""
        return self.nameserver is None or self._registered_once.wait(timeout)

    def stop(self) -> None:
        """Unregister, stop serving, close accepted connections and close every service."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._dirty.set()
        if self._beat_thread is not None:  # first, so no registration lands after _unregister
            self._beat_thread.join(timeout=5)
        self._unregister()
        self.shutdown()
        self.close_connections()
        self._publisher.stop()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
        for name, (service, _, _) in self._hosted.items():
            service._pyrolab_publish = None
            try:
                service.close()
            except Exception:
                log.exception("closing service %s failed", name)

    # what servants call back into

    def locks_changed(self, *services: str) -> None:
        """Tell the services' subscribers and the nameserver (one connection) who holds each lock now."""
        for service in services:
            lease = self.locks.holder(service)
            self.publish(service, LOCK_PROPERTY, lease.holder.identity if lease else None)
        self._register(services)

    def publish(self, service: str, prop: str, value: Any) -> None:
        self._publisher.publish(service, prop, value)

    def subscribe(self, service: str, callback_uri: str, token: str) -> None:
        self._publisher.subscribe(service, callback_uri, token)

    def unsubscribe(self, token: str) -> None:
        self._publisher.unsubscribe(token)

    def client_gone(self, client: ClientInfo) -> None:
        freed = self.locks.release_client(client.client_id)
        if freed:
            log.info("released %s: holder %s disconnected", ", ".join(freed), client.identity)
            self.locks_changed(*freed)

    # registration

    def _metadata(self, name: str) -> set[str]:
        service, _, description = self._hosted[name]
        meta = {META_SERVICE, META_CLASS + class_path(type(service))}
        if description:
            meta.add(META_DESCRIPTION + description)
        lease = self.locks.holder(name)
        if lease is not None:
            meta.add(META_LOCKED_BY + lease.holder.identity)
        return meta

    def _register(self, names: Iterable[str] | None = None) -> bool:
        if self.nameserver is None:
            return True
        names = list(self._hosted if names is None else names)
        try:
            with new_proxy(self.nameserver, _NS_TIMEOUT) as ns:
                for name in names:
                    ns.register(name, self._hosted[name][1], safe=False, metadata=self._metadata(name))
        except AccessDenied as err:  # the nameserver refused the address: retrying will not help
            if not self._ns_warned:
                log.error("the nameserver at %s refused the registration: %s", self.nameserver, err)
                self._ns_warned = True
            return False
        except (PyroError, OSError) as err:
            if not self._ns_warned:
                log.warning("cannot register with the nameserver at %s (%s); retrying every %.1f s",
                            self.nameserver, err, self.heartbeat)
                self._ns_warned = True
            return False
        if self._ns_warned:
            log.info("registered with the nameserver at %s again", self.nameserver)
        self._ns_warned = False
        self._registered_once.set()
        return True

    def _unregister(self) -> None:
        if self.nameserver is None:
            return
        try:
            with new_proxy(self.nameserver, 1.0) as ns:
                for name, (_, uri, _) in self._hosted.items():
                    try:  # only our own entry: another daemon may have taken the name since
                        if str(ns.lookup(name)) == uri:
                            ns.remove(name)
                    except PyroError:
                        pass
        except (PyroError, OSError) as err:
            log.info("could not unregister from %s: %s", self.nameserver, err)

    def _beat(self) -> None:
        """Register now and every heartbeat (sooner when a service was added); end expired leases."""
        next_beat = 0.0
        while not self._stop.is_set():
            if self._dirty.is_set() or time.monotonic() >= next_beat:
                self._dirty.clear()
                self._register()
                next_beat = time.monotonic() + self.heartbeat
            freed = self.locks.expire()
            if freed:
                log.info("lease ended on %s", ", ".join(freed))
                self.locks_changed(*freed)
            self._dirty.wait(_TICK)

