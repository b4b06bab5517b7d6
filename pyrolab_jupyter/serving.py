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

from pyrolab_jupyter import hosting

__all__ = ["configure_child_logging", "main", "serve_daemon", "serve_nameserver", "wait_for_stop"]

CHILD_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
                     max_message: int | None = None) -> int:
    """Run a nameserver in the foreground until a signal stops it; 0 on a clean stop."""
    ns = hosting.start_nameserver(host, port, check_interval, on_offline, storage,  # type: ignore[arg-type]
                                  max_message=max_message)
    announce(f"nameserver at {ns.address} (check every {check_interval:g} s, on offline: {on_offline}); "
             "Ctrl-C stops it")
    try:
        wait_for_stop(watch_stdin)
    finally:
        ns.stop()
    announce(f"nameserver at {ns.address} stopped")
    return 0


def serve_daemon(services: Mapping[str, Any], nameserver: str | Sequence[str] | None, host: str = "127.0.0.1", port: int = 0,
                 heartbeat: float = 5.0, watch_stdin: bool = False,
                 announce: Callable[[str], None] = _say, register_timeout: float = 2.0,
                 ready: Callable[[hosting.DaemonHandle], None] | None = None,
                 max_message: int | None = None, state_file: str | None = None,
                 advertise: str | None = None) -> int:
    """Host ``services`` (name → ``{"class", "args", "description"}``) in the foreground; 0 on a clean stop.

    The daemon registers with ``nameserver`` and keeps retrying on its
    heartbeat while the nameserver is down, so it may start first.
    """
    handle = hosting.start_daemon(services, nameserver=nameserver, host=host, port=port, heartbeat=heartbeat,
                                  register_timeout=register_timeout, max_message=max_message,
                                  state_file=state_file, advertise=advertise)
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


def main(argv: list[str]) -> int:
    """``python -m pyrolab_jupyter.serving nameserver|daemon|spawned JSON``: a child process's body.

    ``nameserver`` and ``daemon`` are ``pyrolab up``'s children; ``spawned`` is
    ``start_daemon(..., spawn=True)``'s, which also reports on stdout, as one
    JSON line, where it serves (or why it could not start).
    """
    configure_child_logging()
    kind, order = argv[0], json.loads(argv[1])
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
            return serve_nameserver(order["host"], order["port"], order["check_interval"], order["on_offline"],
                                    order.get("storage", "memory"), watch_stdin=True, announce=announce,
                                    max_message=order.get("max_message"))
        return serve_daemon(order["services"], order["nameserver"], order["host"], order["port"],
                            order["heartbeat"], watch_stdin=True, announce=announce,
                            register_timeout=order.get("register_timeout", 2.0),
                            ready=report if kind == "spawned" else None,
                            max_message=order.get("max_message"), state_file=order.get("state_file"),
                            advertise=order.get("advertise"))
    except Exception as err:  # noqa: BLE001 - tell the log why, the supervisor restarts or gives up
        child_log.error("cannot start: %s: %s", type(err).__name__, err)
        if kind == "spawned":
            print(json.dumps({"error": f"{type(err).__name__}: {err}"}), file=protocol, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
