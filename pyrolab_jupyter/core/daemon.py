"""LabDaemon: hosts services on one port, enforces their locks, registers them and keeps them registered.

Registration is pushed: at start, on every heartbeat (so a restarted
nameserver repopulates itself) and soon after a lock changes (so
``lab.services()`` shows the holder). All of it happens on the heartbeat
thread, never inside a client's request: a silent nameserver slows no call. A
nameserver that is not up yet is retried on each heartbeat; the daemon never
dies for want of one. Given several nameservers, it registers with each and
tries every one on every heartbeat (no back-off), so one that restarts is
repopulated on the next beat. With a ``state_file`` the lock table survives a restart.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from Pyro5.errors import CommunicationError, PyroError

from pyrolab_jupyter.core.addresses import (
    is_local,
    is_loopback,
    is_wildcard,
    parse_address,
    parse_advertise,
    route_address,
)
from pyrolab_jupyter.core.audit import AuditLog
from pyrolab_jupyter.core.connections import TrackingDaemon
from pyrolab_jupyter.core.errors import AccessDenied, ConfigError
from pyrolab_jupyter.core.instances import Instances, instance_mode_of
from pyrolab_jupyter.core.limits import Limits
from pyrolab_jupyter.core.locks import ClientInfo, LockTable
from pyrolab_jupyter.core.naming import (
    META_CLASS,
    META_DESCRIPTION,
    META_LOCKED_BY,
    META_SERVICE,
    nameserver_uri,
)
from pyrolab_jupyter.core.proxies import ProxyPool, new_proxy
from pyrolab_jupyter.core.publish import LOCK_PROPERTY, Publisher, Snapshot
from pyrolab_jupyter.core.schema import class_path
from pyrolab_jupyter.core.security import Security, warn_if_exposed
from pyrolab_jupyter.core.serialization import decode
from pyrolab_jupyter.core.servant import _Gate, lane_target, make_servant
from pyrolab_jupyter.core.service import Service
from pyrolab_jupyter.core.settings import SETTINGS

__all__ = ["LabDaemon"]

log = logging.getLogger(__name__)

_TICK = 0.2  # how often leases are checked for expiry
_NS_TIMEOUT = 3.0


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


class _RemoteReader:
    """Reads properties of other services; their addresses are kept, looked up again when one moves."""

    def __init__(self, find: Callable[[str], str], security: Security | None = None) -> None:
        self._find = find
        self._security = security  # a TLS lab's daemon reads the others over TLS too
        self._pools: dict[str, ProxyPool] = {}
        self._mutex = threading.Lock()

    def read(self, service: str, prop: str) -> Any:
        """The value now; a service that moved is found again once, a value it failed to read raises."""
        for attempt in (1, 2):
            with self._mutex:
                pool = self._pools.get(service)
            if pool is None:
                pool = ProxyPool(self._find(service), _NS_TIMEOUT, self._security)
                with self._mutex:
                    self._pools[service] = pool
            proxy = pool.acquire()
            try:
                values = proxy._pyroInvoke("pyrolab_read", ([prop],), {})
            except CommunicationError:
                pool.discard(proxy)
                with self._mutex:
                    self._pools.pop(service, None)
                if attempt == 2:
                    raise
                continue
            except BaseException:
                pool.discard(proxy)
                raise
            pool.release(proxy)
            value = decode(values[prop])
            if isinstance(value, BaseException):  # the other service failed to read it
                raise value
            return value
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._mutex:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.reset(pool.uri)  # releases the idle connections


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
        ``host:port`` or a Pyro URI of the nameserver to register with, a list
        of them to register with each, or ``None`` to register nowhere.
    heartbeat:
        Seconds between re-registrations.
    max_message:
        Bytes a message may have (default 128 MiB); see ``core.limits.Limits`` for the other bounds.
    state_file:
        Where the lock table is kept across restarts (``pyrolab up`` puts it beside the daemon's log).
    advertise:
        ``host[:port]`` to put in URIs instead of the bound address (NAT, a
        forwarded port). A wildcard ``host`` without it advertises the
        interface that routes to the nameserver.
    security:
        ``Security`` for mutual TLS: this daemon's certificate, presented to clients, and its client
        certificate for the nameserver and subscribers.
    audit:
        JSON-lines file of every state-changing request (rotated); None keeps the trail in memory only.
    """

    lane_target = staticmethod(lane_target)  # which calls core.lane answers without Pyro5's request path

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        nameserver: str | Sequence[str] | None = None,
        heartbeat: float = SETTINGS.heartbeat,
        max_message: int | None = None,
        limits: Limits | None = None,
        state_file: str | Path | None = None,
        advertise: str | None = None,
        security: Security | None = None,
        audit: str | Path | None = None,
    ) -> None:
        if heartbeat <= 0:
            raise ValueError(f"heartbeat={heartbeat!r}: must be a positive number of seconds")
        limits = limits or Limits()
        if max_message is not None:
            if max_message <= 0:
                raise ValueError(f"max_message={max_message!r}: must be a positive number of bytes")
            limits = dataclasses.replace(limits, max_message=max_message)
        given = [nameserver] if isinstance(nameserver, str) else list(nameserver or ())
        ns_uris = list(dict.fromkeys(nameserver_uri(ns) for ns in given if ns))
        nathost, natport = _advertised(host, advertise, ns_uris[0] if ns_uris else None)
        for other in ns_uris[1:]:  # refuses a loopback address that another PC's nameserver would be given
            _advertised(host, advertise, other)
        super().__init__(host=host, port=port, limits=limits, nathost=nathost, natport=natport, security=security)
        warn_if_exposed(host, security, f"the daemon at {self.locationStr}")
        self.audit = AuditLog(audit)
        self.locks = LockTable(state_file)
        self.nameservers = ns_uris
        self.nameserver = ns_uris[0] if ns_uris else None  # the first: where other services are looked up first
        self.heartbeat = heartbeat
        self._hosted: dict[str, tuple[Service, str, str]] = {}  # name -> (service, uri, description)
        self._instances: dict[str, Instances] = {}  # services in session or percall mode
        self._publisher = Publisher(security=security)
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._serve_thread: threading.Thread | None = None
        self._beat_thread: threading.Thread | None = None
        self._registered_once = threading.Event()
        self._ns_warned: set[str] = set()
        self._remote = _RemoteReader(self._find, security)

    # hosting

    def add(self, name: str, service: Service, description: str | None = None, *,
            instance_mode: str | None = None, factory: Callable[[], Service] | None = None) -> str:
        """Host ``service`` as ``name``; returns its URI.

        ``instance_mode`` (else the class's ``instance_mode``, else ``single``): see ``core.instances``.
        In session and percall mode ``service`` is the template of the description and ``factory``
        (default: its class, called without arguments) makes each instance that serves calls.
        """
        if not isinstance(service, Service):
            raise TypeError(f"{name}: {type(service).__qualname__} is not a pyrolab_jupyter.Service subclass")
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"service name {name!r}: must be non-empty and contain no spaces")
        if name in self._hosted:
            raise ValueError(f"service name {name!r} is already hosted by this daemon")
        mode = instance_mode_of(type(service), instance_mode, where=name)
        instances = None
        if mode != "single":
            instances = Instances(name, mode, factory or type(service), lambda safe: _Gate(name, safe))
        servant = make_servant(name, service, self, description, instances)
        uri = str(self.register(servant, objectId=name))
        if instances is None:
            self._publisher.poller.add(name, servant.poll_periods, servant.poll_read)
            service._pyrolab_publish = lambda prop, value: self.publish(name, prop, value)
        else:
            self._instances[name] = instances
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
        """Block until the first registration (with any of the nameservers) succeeded (True) or ``timeout`` passed."""
        return not self.nameservers or self._registered_once.wait(timeout)

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
        self._remote.close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
        for instances in self._instances.values():
            instances.close()
        for name, (service, _, _) in self._hosted.items():
            service._pyrolab_publish = None
            try:
                service.close()
            except Exception:
                log.exception("closing service %s failed", name)
        self.audit.close()

    # what servants call back into

    def locks_changed(self, *services: str) -> None:
        """Save the table, tell the services' subscribers who holds each lock now; the nameserver learns it
        on the heartbeat thread (never inside the caller's request)."""
        self.locks.save()
        for service in services:
            lease = self.locks.holder(service)
            self.publish(service, LOCK_PROPERTY, lease.holder.identity if lease else None)
        if self._beat_thread is not None:
            self._dirty.set()

    def keeps_connection(self, conn: Any) -> bool:
        """An idle connection stays open while its client holds a lock here (closing it would end the lock)."""
        with self._conns_mutex:
            client = self._conns.get(conn)
        if client is not None and (self.locks.holds_any(client.client_id)
                                   or any(i.has_session(client.client_id) for i in self._instances.values())):
            return True  # closing it would end the lock, or the client's own session instance
        return super().keeps_connection(conn)

    def publish(self, service: str, prop: str, value: Any) -> None:
        self._publisher.publish(service, prop, value)

    def listened(self, service: str) -> bool:
        return self._publisher.listened(service)

    def subscribe(self, service: str, callback_uri: str, token: str, client_id: str, snapshot: Snapshot) -> None:
        self._publisher.subscribe(service, callback_uri, token, client_id, snapshot)

    def unsubscribe(self, token: str) -> None:
        self._publisher.unsubscribe(token)

    def subscribed(self, token: str) -> bool:
        return self._publisher.has(token)

    def read_remote(self, service: str, prop: str) -> Any:
        """A property of another service, read now as any client reads it (interlocks check these)."""
        return self._remote.read(service, prop)

    def _find(self, service: str) -> str:
        """Where ``service`` is: asked of each nameserver in turn (of this daemon's own, when there is none)."""
        failure: Exception | None = None
        for uri in self.nameservers:
            try:
                with new_proxy(uri, _NS_TIMEOUT, self.security) as ns:
                    return str(ns.lookup(service))
            except (PyroError, OSError) as err:
                failure = failure or err
        if failure is not None:
            raise failure
        if service in self._hosted:
            return self._hosted[service][1]
        raise LookupError(f"no nameserver to find {service!r} with")

    def client_gone(self, client: ClientInfo) -> None:
        for instances in self._instances.values():  # its session instances are closed
            instances.client_gone(client.client_id)
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
        """Register with every nameserver (each tried, whichever is down); True if one took it."""
        names = list(self._hosted if names is None else names)
        results = [self._register_with(uri, names) for uri in self.nameservers]
        return not results or any(results)

    def _register_with(self, uri: str, names: list[str]) -> bool:
        try:
            with new_proxy(uri, _NS_TIMEOUT, self.security) as ns:
                for name in names:
                    ns.register(name, self._hosted[name][1], safe=False, metadata=self._metadata(name))
        except AccessDenied as err:  # the nameserver refused the address: retrying will not help
            if uri not in self._ns_warned:
                log.error("the nameserver at %s refused the registration: %s", uri, err)
                self._ns_warned.add(uri)
            return False
        except (PyroError, OSError) as err:
            if uri not in self._ns_warned:
                log.warning("cannot register with the nameserver at %s (%s); retrying every %.1f s",
                            uri, err, self.heartbeat)
                self._ns_warned.add(uri)
            return False
        if uri in self._ns_warned:
            log.info("registered with the nameserver at %s again", uri)
        self._ns_warned.discard(uri)
        self._registered_once.set()
        return True

    def _unregister(self) -> None:
        for ns_uri in self.nameservers:
            try:
                with new_proxy(ns_uri, 1.0, self.security) as ns:
                    for name, (_, uri, _) in self._hosted.items():
                        try:  # only our own entry: another daemon may have taken the name since
                            if str(ns.lookup(name)) == uri:
                                ns.remove(name)
                        except PyroError:
                            pass
            except (PyroError, OSError) as err:
                log.info("could not unregister from %s: %s", ns_uri, err)

    def _beat(self) -> None:
        """Register now and every heartbeat (sooner when a service was added); end expired leases."""
        next_beat = 0.0
        while not self._stop.is_set():
            if self._dirty.is_set() or time.monotonic() >= next_beat:
                self._dirty.clear()
                self._register()
                next_beat = time.monotonic() + self.heartbeat
            with self._conns_mutex:
                connected = {client.client_id for client in self._conns.values()}
            freed = self.locks.expire(connected)
            if freed:
                log.info("lease ended on %s", ", ".join(freed))
                self.locks_changed(*freed)
            self._dirty.wait(_TICK)

