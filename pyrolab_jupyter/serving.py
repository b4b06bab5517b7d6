"""Serve a nameserver or a daemon in the foreground until told to stop: the body of every child process.

``pyrolab nameserver`` / ``pyrolab daemon`` run these in the terminal; ``pyrolab
up``'s children and ``start_daemon(..., spawn=True)`` run them as
``python -m pyrolab_jupyter.serving KIND JSON``. A child stops on SIGTERM,
SIGINT or the end of its stdin (its parent holds the other end, so a parent
killed with ``kill -9`` leaves no orphan holding a port).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

from pydantic import BaseModel, ConfigDict

from pyrolab_jupyter import hosting
from pyrolab_jupyter.core.config import DaemonConfig, NameserverConfig
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.settings import SETTINGS

__all__ = ["DaemonOrder", "NameserverOrder", "configure_child_logging", "main", "serve_daemon", "serve_nameserver",
           "wait_for_stop"]

CHILD_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class NameserverOrder(BaseModel):
    """What ``pyrolab up`` tells a nameserver child: the lab file's own model, sent as JSON and parsed back."""

    model_config = ConfigDict(extra="forbid")
    nameserver: NameserverConfig
    max_message: int | None = None
    security: dict[str, str] | None = None
    """The lab file's ``security:`` files, resolved to absolute paths (mutual TLS)."""


class DaemonOrder(BaseModel):
    """What ``pyrolab up`` tells a daemon child: the lab file's ``DaemonConfig`` as it is, plus where to register."""

    model_config = ConfigDict(extra="forbid")
    daemon: DaemonConfig
    nameserver: str | list[str] | None
    """The lab file's nameserver, then the daemon's own ``nameservers:``."""
    max_message: int | None = None
    state_file: str | None = None
    register_timeout: float = 2.0
    security: dict[str, str] | None = None
    """The lab file's ``security:`` files, resolved to absolute paths (mutual TLS)."""
    audit: str | None = None
    """Where the daemon writes its audit trail (``pyrolab up``: beside its log)."""

    def to_json(self) -> str:
        """The command-line form (services keep the lab file's ``class`` key)."""
        return self.model_dump_json(by_alias=True)


def _say(text: str) -> None:
    print(text, flush=True)


def wait_for_stop(watch_stdin: bool) -> None:
    """Block until SIGTERM or SIGINT (or, when ``watch_stdin``, the end of stdin)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if watch_stdin:
        def watch() -> None:
            try:
                sys.stdin.read()
            except (OSError, ValueError):
                pass
            stop.set()

        threading.Thread(target=watch, name="pyrolab-parent-watch", daemon=True).start()
    while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
        pass


def serve_nameserver(host: str, port: int, check_interval: float, on_offline: str, storage: str = "memory",
                     watch_stdin: bool = False, announce: Callable[[str], None] = _say,
                     max_message: int | None = None, security: Security | None = None) -> int:
    """Run a nameserver in the foreground until a signal stops it; 0 on a clean stop."""
    ns = hosting.start_nameserver(host, port, check_interval, on_offline, storage,  # type: ignore[arg-type]
                                  max_message=max_message, security=security)
    tls = f", TLS as {security.identity.name}" if security is not None else ""
    announce(f"nameserver at {ns.address} (check every {check_interval:g} s, on offline: {on_offline}{tls}); "
             "Ctrl-C stops it")
    try:
        wait_for_stop(watch_stdin)
    finally:
        ns.stop()
    announce(f"nameserver at {ns.address} stopped")
    return 0


def serve_daemon(services: Mapping[str, Any], nameserver: str | Sequence[str] | None, host: str = "127.0.0.1",
                 port: int = 0, heartbeat: float = SETTINGS.heartbeat, watch_stdin: bool = False,
                 announce: Callable[[str], None] = _say, register_timeout: float = 2.0,
                 ready: Callable[[hosting.DaemonHandle], None] | None = None,
                 max_message: int | None = None, state_file: str | None = None,
                 advertise: str | None = None, security: Security | None = None, audit: str | None = None) -> int:
    """Host ``services`` (name → ``{"class", "args", "description"}``) in the foreground; 0 on a clean stop.

    The daemon registers with ``nameserver`` and keeps retrying on its
    heartbeat while the nameserver is down, so it may start first.
    """
    handle = hosting.start_daemon(services, nameserver=nameserver, host=host, port=port, heartbeat=heartbeat,
                                  register_timeout=register_timeout, max_message=max_message,
                                  state_file=state_file, advertise=advertise, security=security, audit=audit)
    daemon = handle.daemon
    registered = daemon is not None and daemon.wait_registered(0)
    for name, uri in handle.uris.items():
        announce(f"serving {name} at {uri}")
    if nameserver:
        where = nameserver if isinstance(nameserver, str) else ", ".join(nameserver)
        announce(f"registered with the nameserver at {where}" if registered else
                 f"the nameserver at {where} does not answer yet; retrying every {heartbeat:g} s")
    if ready is not None:
        ready(handle)
    try:
        wait_for_stop(watch_stdin)
    finally:
        handle.stop()
    announce(f"daemon at {handle.address} stopped")
    return 0


def configure_child_logging() -> None:
    """INFO and up to stderr, with time and level: what a foreground nameserver or daemon shows."""
    logging.basicConfig(level=logging.INFO, format=CHILD_LOG_FORMAT, stream=sys.stderr)


def _security(files: Mapping[str, str] | None) -> Security | None:
    """The ``Security`` a parent handed over as its files (``Security.files()``), or None for a plain lab."""
    return None if not files else Security(files["certfile"], files["keyfile"], files["cafile"])


def main(argv: list[str]) -> int:
    """``python -m pyrolab_jupyter.serving nameserver|daemon|spawned JSON``: a child process's body.

    ``nameserver`` and ``daemon`` are ``pyrolab up``'s children; ``spawned`` is
    ``start_daemon(..., spawn=True)``'s, which also reports on stdout, as one
    JSON line, where it serves (or why it could not start).
    """
    configure_child_logging()
    kind = argv[0]
    child_log = logging.getLogger(f"pyrolab.{kind}")

    def announce(text: str) -> None:  # a spawned daemon's parent already says where it serves
        child_log.log(logging.DEBUG if kind == "spawned" else logging.INFO, "%s", text)

    protocol = sys.stdout
    if kind == "spawned":  # stdout carries the ready line: a driver that prints (QCoDeS does) goes to stderr
        sys.stdout = sys.stderr

    def report(handle: hosting.DaemonHandle) -> None:
        print(json.dumps({"uris": handle.uris, "address": handle.address}), file=protocol, flush=True)

    try:
        if kind == "nameserver":
            ns_order = NameserverOrder.model_validate_json(argv[1])
            ns = ns_order.nameserver
            security = _security(ns_order.security)
            return serve_nameserver(ns.host, ns.port, ns.check_interval, ns.on_offline, ns.storage,
                                    watch_stdin=True, announce=announce, max_message=ns_order.max_message,
                                    security=security)
        if kind == "daemon":
            order = DaemonOrder.model_validate_json(argv[1])
            daemon = order.daemon
            security = _security(order.security)
            return serve_daemon(daemon.services, order.nameserver, daemon.host, daemon.port, daemon.heartbeat,
                                watch_stdin=True, announce=announce, register_timeout=order.register_timeout,
                                max_message=order.max_message, state_file=order.state_file,
                                advertise=daemon.advertise, security=security, audit=order.audit)
        spawned = json.loads(argv[1])  # start_daemon(spawn=True): any spec a caller may give, checked there
        security = _security(spawned.get("security"))
        return serve_daemon(spawned["services"], spawned["nameserver"], spawned["host"], spawned["port"],
                            spawned["heartbeat"], watch_stdin=True, announce=announce,
                            register_timeout=spawned.get("register_timeout", 2.0), ready=report,
                            max_message=spawned.get("max_message"), state_file=spawned.get("state_file"),
                            advertise=spawned.get("advertise"), security=security, audit=spawned.get("audit"))
    except Exception as err:  # noqa: BLE001 - tell the log why, the supervisor restarts or gives up
        child_log.error("cannot start: %s: %s", type(err).__name__, err)
        if kind == "spawned":
            print(json.dumps({"error": f"{type(err).__name__}: {err}"}), file=protocol, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
