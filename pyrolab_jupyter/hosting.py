"""Start and stop nameservers and daemons: in this process (background threads) or in a child process.

``start_daemon(..., spawn=True)`` runs the daemon in its own Python process
(``python -m pyrolab_jupyter.serving spawned ...``) that exits when its parent's pipe
closes, so a crashed parent leaves no orphan holding a port.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, cast

from pyrolab_jupyter import labcheck
from pyrolab_jupyter.adapters import adapt
from pyrolab_jupyter.core.config import ServiceConfig
from pyrolab_jupyter.core.daemon import LabDaemon
from pyrolab_jupyter.core.errors import ConfigError, PyroLabError
from pyrolab_jupyter.core.instances import instance_mode_of
from pyrolab_jupyter.core.nameserver import NameserverHost
from pyrolab_jupyter.core.safety import apply_rules, rules_from
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.service import Service
from pyrolab_jupyter.core.settings import SETTINGS

__all__ = [
    "DaemonHandle", "ServiceSpec", "build_service", "import_class", "service_factory", "start_daemon",
    "start_nameserver",
]

log = logging.getLogger(__name__)

ServiceSpec = Service | str | Mapping[str, Any] | object  # any other object goes through an adapter
_SPAWN_TIMEOUT = 60.0


def import_class(path: str) -> type:
    """``package.module:ClassName`` → the class, or ``ConfigError`` saying what is missing."""
    if ":" not in path:
        raise ConfigError(f"{path!r}: expected 'package.module:ClassName'")
    try:
        obj = labcheck.import_class(path)
    except ImportError as err:
        raise ConfigError(f"cannot import {path!r}: {err}") from err
    if not isinstance(obj, type):
        raise ConfigError(f"{path!r} is not a class")
    return obj


def build_service(name: str, spec: ServiceSpec) -> tuple[Service, str | None]:
    """Make the service a spec asks for.

    A spec is a ``Service``; ``"mod:Cls"``; the lab file's ``ServiceConfig``; a mapping with ``class``
    and optionally ``args``, ``description``, ``thread_safe``, ``adapter``, ``instance_mode``,
    ``record`` (a JSON-lines file the driver's VISA dialogue is appended to) and the safety rules
    ``limits``, ``ramps``, ``interlocks`` (the lab file's keys and forms); or any other object (a class
    is constructed without arguments), served through the adapter that claims it (see
    ``pyrolab_jupyter.adapters``) or the one ``adapter`` names.
    """
    if isinstance(spec, Service):
        return spec, None
    if isinstance(spec, ServiceConfig):  # the lab file's model, as `pyrolab up` hands it to its children
        return service_factory(name, spec)(), spec.description or None
    if not isinstance(spec, (str, Mapping)):
        try:
            return adapt(spec() if isinstance(spec, type) else spec), None
        except TypeError as err:
            raise ConfigError(f"{name}: cannot serve {spec!r}: {err}") from err
    spec = _mapping(name, spec)
    return service_factory(name, spec)(), spec.get("description")


def _mapping(name: str, spec: str | Mapping[str, Any]) -> Mapping[str, Any]:
    spec = cast(Mapping[str, Any], {"class": spec} if isinstance(spec, str) else spec)
    if "class" not in spec:
        raise ConfigError(f"{name}: expected an object, 'module:Class' or a mapping with 'class'")
    return spec


def service_factory(name: str, spec: str | Mapping[str, Any] | ServiceConfig) -> Callable[[], Service]:
    """What makes one instance of a ``"mod:Cls"``, mapping or ``ServiceConfig`` spec: called once in single
    mode, per client (session) or per call (percall) in the others. The class is imported and the rules
    checked now."""
    if isinstance(spec, ServiceConfig):
        class_path, args, adapter, thread_safe, record = (
            spec.class_path, dict(spec.args), spec.adapter, spec.thread_safe, spec.record)
        rules = rules_from(spec.limits, spec.ramps, spec.interlocks, where=name)
    else:
        spec = _mapping(name, spec)
        class_path, args, adapter, thread_safe, record = (
            str(spec["class"]), dict(spec.get("args") or {}), spec.get("adapter"), spec.get("thread_safe"),
            spec.get("record"))
        rules = rules_from(spec.get("limits"), spec.get("ramps"), spec.get("interlocks"), where=name)
    cls = import_class(class_path)
    if record:
        cls, args = _recorded(name, cls, args, str(record))

    def make() -> Service:
        try:
            made = cls(**args)
        except TypeError as err:
            raise ConfigError(f"{name}: cannot construct {class_path} with args {args}: {err}") from err
        service = made if isinstance(made, Service) and not adapter else adapt(made, adapter)
        if thread_safe is not None:  # the lab file may overrule the class's own setting
            service.thread_safe = bool(thread_safe)
        if rules:  # the lab file's rules add to the class's and the constructor's; limits only narrow
            apply_rules(service, rules)
        return service

    return make


def _recorded(name: str, cls: type, args: dict[str, Any], path: str) -> tuple[type, dict[str, Any]]:
    """The class and arguments that record the driver's VISA dialogue to ``path``, from its first exchange."""
    try:
        takes_record = "record" in inspect.signature(cls).parameters  # VisaInstrument and drivers built on it
    except (TypeError, ValueError):  # no signature to read (a C type)
        takes_record = False
    if takes_record:
        return cls, {**args, "record": path}
    from pyrolab_jupyter.adapters.recording import recording_subclass

    recording = recording_subclass(cls, path)
    if recording is None:
        raise ConfigError(f"{name}: 'record' needs a driver that talks through PyVISA: a class with a 'record' "
                          "argument (VisaInstrument), a QCoDeS VisaInstrument or a PyMeasure Instrument; "
                          f"{cls.__qualname__} is none of them")
    return recording, args


def start_nameserver(
    host: str = "127.0.0.1",
    port: int = SETTINGS.nameserver_port,
    check_interval: float = SETTINGS.check_interval,
    on_offline: Literal["keep", "remove"] = "keep",
    storage: str = "memory",
    max_message: int | None = None,
    security: Security | None = None,
) -> NameserverHost:
    """A nameserver with its health monitor, serving from this process's background threads.

    The handle has ``uri``, ``address`` (``host:port``) and ``stop()``. ``port=0`` picks a free port.
    ``max_message``: bytes a message may have (default 128 MiB; a larger one is refused from its header).
    ``security``: serve mutual TLS only; only ``daemon`` certificates may register or remove names.
    """
    return NameserverHost(host, port, check_interval, on_offline, storage, max_message=max_message,
                          security=security).start()


class DaemonHandle:
    """A running daemon: ``uris`` (name → URI), ``address``, ``stop()``; ``pid`` when spawned."""

    def __init__(self, uris: dict[str, str], address: str, daemon: LabDaemon | None = None,
                 process: subprocess.Popen[str] | None = None) -> None:
        self.uris = uris
        self.address = address
        self.daemon = daemon
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else os.getpid()

    @property
    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.daemon is not None and not self.daemon._stop.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        """Unregister, stop serving and close every connection; a child process is ended."""
        if self.daemon is not None:
            self.daemon.stop()
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            try:
                assert process.stdin is not None
                process.stdin.close()  # the child stops cleanly when its pipe closes
                process.wait(timeout)
            except (subprocess.TimeoutExpired, OSError):
                process.kill()
                process.wait(5)
        for stream in (process.stdin, process.stdout):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> DaemonHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"pid {self.pid}" if self.process is not None else "in this process"
        return f"<daemon {self.address} ({where}) hosting {', '.join(self.uris)}>"


def _build(name: str, spec: ServiceSpec) -> tuple[Service, str | None, str | None, Callable[[], Service] | None]:
    """The service (the template, in session or percall mode), its description, mode and factory."""
    mode = (spec.instance_mode if isinstance(spec, ServiceConfig)
            else spec.get("instance_mode") if isinstance(spec, Mapping) else None)
    service, description = build_service(name, spec)
    chosen = instance_mode_of(type(service), mode, where=name)
    if chosen == "single":
        return service, description, chosen, None
    if not isinstance(spec, (str, Mapping, ServiceConfig)) and not (isinstance(spec, type)
                                                                    and issubclass(spec, Service)):
        per = "client" if chosen == "session" else "call"
        raise ConfigError(f"{name}: instance_mode {chosen!r} makes an instance per {per}; give the class "
                          "('module:Class', a mapping or a Service subclass), not an instance")
    factory = type(service) if isinstance(spec, type) else service_factory(name, cast(Any, spec))
    return service, description, chosen, factory


def _host_services(services: Mapping[str, ServiceSpec], nameserver: str | Sequence[str] | None, host: str,
                   port: int, heartbeat: float, max_message: int | None = None, state_file: str | None = None,
                   advertise: str | None = None, security: Security | None = None,
                   audit: str | None = None) -> LabDaemon:
    """Build every service, then serve them from one started ``LabDaemon``; nothing runs if one fails."""
    built = {name: _build(name, spec) for name, spec in services.items()}
    daemon = LabDaemon(host=host, port=port, nameserver=nameserver, heartbeat=heartbeat, max_message=max_message,
                       state_file=state_file, advertise=advertise, security=security, audit=audit)
    try:
        for name, (service, description, mode, factory) in built.items():
            daemon.add(name, service, description, instance_mode=mode, factory=factory)
    except BaseException:
        daemon.close()
        raise
    daemon.start()
    return daemon


def start_daemon(
    services: Mapping[str, ServiceSpec],
    nameserver: str | Sequence[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    spawn: bool = False,
    heartbeat: float = SETTINGS.heartbeat,
    register_timeout: float = SETTINGS.register_timeout,
    max_message: int | None = None,
    state_file: str | None = None,
    advertise: str | None = None,
    security: Security | None = None,
    audit: str | None = None,
) -> DaemonHandle:
    """Host ``services`` (name → any object, ``"module:Class"`` or ``{"class", "args", "description", "adapter",
    "instance_mode"}``).

    An object that is not a ``Service`` is served through an adapter (see
    ``pyrolab_jupyter.adapters``). With ``spawn=True`` the daemon runs in its
    own process (specs must then be strings or mappings). Returns once the daemon serves and, when a
    nameserver is given and answers within ``register_timeout``, is registered (``nameserver`` may be a list:
    the daemon registers with each, and is ready once one took it). ``max_message``: bytes a
    message may have (default 128 MiB). ``state_file``: where its locks are kept across a restart.
    ``advertise`` (``host[:port]``) is the address put in URIs when ``host`` is a wildcard or behind
    NAT; see ``LabDaemon``.
    ``security``: serve (and register, and call subscribers back) over mutual TLS with this certificate.
    ``audit``: the JSON-lines file of every state-changing request (else kept in memory only).
    """
    if not services:
        raise ValueError("start_daemon() needs at least one service")
    if not spawn:
        daemon = _host_services(services, nameserver, host, port, heartbeat, max_message, state_file, advertise,
                                security, audit)
        daemon.wait_registered(register_timeout)
        return DaemonHandle(daemon.uris, daemon.address, daemon=daemon)
    for name, spec in services.items():
        if not isinstance(spec, (str, Mapping)):
            raise ValueError(f"{name}: spawn=True needs 'module:Class' or a mapping, not an instance")
    specs = {n: {"class": s} if isinstance(s, str) else dict(cast(Mapping[str, Any], s)) for n, s in services.items()}
    order = {"services": specs,
             "nameserver": nameserver, "host": host, "port": port, "heartbeat": heartbeat,
             "register_timeout": register_timeout, "max_message": max_message, "state_file": state_file,
             "advertise": advertise,
             "security": security.files() if security is not None else None, "audit": audit}
    process = subprocess.Popen(
        [sys.executable, "-m", "pyrolab_jupyter.serving", "spawned", json.dumps(order)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    ready = _read_ready(process)
    if "error" in ready:
        process.wait(5)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        raise PyroLabError(f"the daemon process for {', '.join(services)} failed to start: {ready['error']}")
    return DaemonHandle(ready["uris"], ready["address"], process=process)


def _read_ready(process: subprocess.Popen[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def read() -> None:
        assert process.stdout is not None
        line = process.stdout.readline()
        result.update(json.loads(line) if line.strip() else {"error": "it exited before it was ready"})

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(_SPAWN_TIMEOUT)
    if reader.is_alive():
        process.kill()
        return {"error": f"no answer within {_SPAWN_TIMEOUT:g} s"}
    return result
