"""``pyrolab up``: run a lab file's nameserver and daemons, each in its own process, and keep them running.

The ``Supervisor`` starts the nameserver first, then one child process per
daemon of the file. A child that dies is restarted (the first time within
0.5 s, then with exponential backoff); one that keeps crashing is given up on
with a clear line, and the others keep running. Every child's output goes to
its own rotated log file and to the console, prefixed ``[name] `` (coloured
only on a terminal). The console never holds anything up: lines go through a
bounded buffer written by a thread of its own, so an unread or closed stdout
costs console lines (the log files keep them all), never service. The first Ctrl-C or SIGTERM stops every child (SIGTERM,
then a kill after ``stop_timeout``); a second Ctrl-C kills at once.

The children run ``python -m pyrolab_jupyter.serving nameserver|daemon JSON``
(see ``serving``): in the foreground until SIGTERM, SIGINT or the end of their stdin (the supervisor holds the other end, so a supervisor
killed with ``kill -9`` leaves no orphan holding a port).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from pyrolab_jupyter import serving
from pyrolab_jupyter.core.addresses import parse_address
from pyrolab_jupyter.core.config import LabConfig
from pyrolab_jupyter.core.settings import SETTINGS

__all__ = ["ChildSpec", "RestartPolicy", "Supervisor", "answers", "lab_children", "logs_folder"]


_COLOURS = ("36", "33", "35", "32", "34", "31")  # cyan, yellow, magenta, green, blue, red
_TICK = 0.05
_CONSOLE_LINES = 2000  # console lines buffered while the console does not take them; older ones are dropped
_CONSOLE_WAIT = 0.2  # seconds a line waits for a full console before it is dropped
_CONSOLE_LINE_BYTES = 4000  # under PIPE_BUF: a writable pipe takes the whole line without blocking
_PORT_LINE = re.compile(r"(?:serving \S+ at PYRO:[^@\s]+@|(?:^|: )nameserver at )(?:\[[^\]\s]*\]|[^\s:\[]+):(\d+)\b")
_CONTROL_WAIT = 120.0  # seconds a control request waits for the supervisor's loop


class _Console:
    """Writes lines to a stream from its own thread; a stream that blocks or breaks costs lines only.

    ``write`` never blocks (a deque append, safe from a signal handler too).
    """

    def __init__(self, stream: TextIO, lines: int = _CONSOLE_LINES) -> None:
        self.stream = stream
        try:  # a real file descriptor is written directly, and only when it takes a line at once
            stream.flush()
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._lines: deque[str] = deque(maxlen=lines)
        self._dropped = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def write(self, line: str) -> None:
        if len(self._lines) == self._lines.maxlen:
            self._dropped += 1
        self._lines.append(line)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pyrolab-up-console", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                line = self._lines.popleft()
            except IndexError:
                if self._closed:
                    return
                time.sleep(_TICK)
                continue
            if self._dropped:
                line, self._dropped = f"[up] ({self._dropped} console lines dropped; the logs have them)\n{line}", 0
            try:
                self._emit(line)
            except (OSError, ValueError):
                pass

    def _emit(self, line: str) -> None:
        if self._fd is None:
            self.stream.write(line)
            self.stream.flush()
            return
        if not select.select([], [self._fd], [], _CONSOLE_WAIT)[1]:
            self._dropped += 1  # nobody reads the console: the line is lost there (the log file has it)
            return
        os.write(self._fd, line.encode("utf-8", "replace")[:_CONSOLE_LINE_BYTES])

    def close(self, timeout: float = 1.0) -> None:
        """Let the thread write what is buffered, for at most ``timeout`` seconds."""
        self._closed = True
        if self._thread is not None:
            self._thread.join(timeout)


# --- the children ------------------------------------------------------------------------------


# --- the supervisor ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a dead child: backoff ``first``, doubling up to ``cap``, back to ``first`` after
    ``stable`` seconds of life; more than ``max_restarts`` within ``window`` seconds is a crash loop."""

    first: float = 0.5
    cap: float = 8.0
    stable: float = 10.0
    max_restarts: int = 5
    window: float = 60.0


@dataclass
class ChildSpec:
    """One process to keep running: its name (the log prefix) and the command line."""

    name: str
    argv: list[str]


@dataclass
class _Child:
    spec: ChildSpec
    colour: str
    logger: logging.Logger
    process: subprocess.Popen[str] | None = None
    started: float = 0.0
    backoff: float = 0.0
    restart_at: float | None = None
    restarts: deque[float] = field(default_factory=deque)
    given_up: bool = False
    reader: threading.Thread | None = None
    restarted: int = 0  # restarts since ``up`` began (``restarts`` only holds the recent ones)
    port: int | None = None  # where it listens, from its start line


def lab_children(lab: LabConfig, python: str = sys.executable, parts: Collection[str] | None = None,
                 state_dir: Path | None = None) -> list[ChildSpec]:
    """The processes a lab file asks for: its nameserver (unless ``external``), then one per daemon.

    ``parts`` keeps only the named ones (``"nameserver"``, daemon names): this PC's share of the lab.
    With ``state_dir`` (the logs folder) each daemon keeps its lock table there, so a restart keeps the locks,
    and its audit trail (``NAME.audit.jsonl``). The file's ``security:`` goes to every child (mutual TLS).
    """
    ns = lab.nameserver
    specs = []
    sec = lab.security
    security = None if sec is None else {
        key: str(lab.resolve(getattr(sec, key))) for key in ("certfile", "keyfile", "cafile")}
    if not ns.external and (parts is None or "nameserver" in parts):
        ns_order = serving.NameserverOrder(nameserver=ns, max_message=lab.max_message(ns), security=security)
        specs.append(ChildSpec("nameserver", [python, "-m", serving.__name__, "nameserver",
                                              ns_order.model_dump_json()]))
    for name, daemon in lab.daemons.items():
        if parts is not None and name not in parts:
            continue
        recorded = {sname: s.model_copy(update={"record": str(lab.resolve(s.record))})  # the file's folder
                    for sname, s in daemon.services.items() if s.record}
        if recorded:
            daemon = daemon.model_copy(update={"services": {**daemon.services, **recorded}})
        order = serving.DaemonOrder(daemon=daemon,
                                    nameserver=[ns.address, *daemon.nameservers] if daemon.nameservers else ns.address,
                                    max_message=lab.max_message(daemon),
                                    state_file=str(state_dir / f"{name}.locks.json") if state_dir else None,
                                    security=security,
                                    audit=str(state_dir / f"{name}.audit.jsonl") if state_dir else None)
        specs.append(ChildSpec(name, [python, "-m", serving.__name__, "daemon", order.to_json()]))
    return specs


def answers(address: str, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at ``host:port``."""
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def logs_folder(lab: LabConfig, override: str | Path | None = None) -> Path:
    """``--logs`` if given, else the file's ``logs:`` key, else ``logs/`` beside the lab file."""
    if override is not None:
        return Path(override).expanduser().resolve()
    return lab.resolve(lab.logs) if lab.logs else lab.base_dir / "logs"


class Supervisor:
    """Starts, watches, restarts and stops a set of child processes.

    Parameters
    ----------
    children:
        What to run, in start order.
    logs:
        Folder for one rotated log file per child (``NAME.log``) and ``up.log``.
    wait_for:
        ``host:port`` to wait for (bounded) after the first child starts: the
        nameserver, so daemons find it at once (they would retry anyway).
    console:
        Where prefixed lines go; coloured only when it is a terminal.
    own_log:
        Name of the supervisor's own log (``up`` → ``up.log``); several
        supervisors of one lab file on a shared filesystem each need their own.
    """

    def __init__(self, children: list[ChildSpec], logs: Path, wait_for: str | None = None,
                 policy: RestartPolicy | None = None, console: TextIO | None = None,
                 stop_timeout: float = SETTINGS.stop_timeout, env: Mapping[str, str] | None = None, own_log: str = "up") -> None:
        self.policy = policy or RestartPolicy()
        self.logs = logs
        self.wait_for = wait_for
        self.stop_timeout = stop_timeout
        self.console = console if console is not None else sys.stdout
        self.colour = bool(getattr(self.console, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
        self._console = _Console(self.console)
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._stop = threading.Event()
        self._kill = threading.Event()
        self._requests: queue.Queue[tuple[Callable[[], dict[str, Any]], queue.Queue[dict[str, Any]]]] = \
            queue.Queue()
        logs.mkdir(parents=True, exist_ok=True)
        self._own_log = self._file_logger(own_log)
        self.children = [_Child(spec, _COLOURS[i % len(_COLOURS)], self._file_logger(spec.name))
                         for i, spec in enumerate(children)]

    # output

    def _file_logger(self, name: str) -> logging.Logger:
        logger = logging.getLogger(f"pyrolab.up.{id(self)}.{name}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        for old in list(logger.handlers):
            logger.removeHandler(old)
            old.close()
        handler = logging.handlers.RotatingFileHandler(self.logs / f"{name}.log", maxBytes=5_000_000,
                                                       backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        return logger

    def _echo(self, prefix: str, colour: str, line: str) -> None:
        head = f"\x1b[{colour}m[{prefix}]\x1b[0m " if self.colour else f"[{prefix}] "
        self._console.write(head + line + "\n")

    def say(self, text: str, child: _Child | None = None) -> None:
        """A line of the supervisor's own: console (as ``[up]``), ``up.log`` and the child's log."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._own_log.info("%s %s", stamp, text)
        if child is not None:
            child.logger.info("%s supervisor: %s", stamp, text)
        self._echo("up", "1", text)

    def _pump(self, child: _Child, stream: TextIO) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            if child.port is None and (match := _PORT_LINE.search(line)):
                child.port = int(match.group(1))
            child.logger.info("%s", line)
            self._echo(child.spec.name, child.colour, line)
        stream.close()

    # lifecycle

    def _spawn(self, child: _Child) -> None:
        process = subprocess.Popen(child.spec.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=self.env,
                                   start_new_session=True)  # Ctrl-C reaches us; we stop the children
        child.process, child.started, child.restart_at, child.port = process, time.monotonic(), None, None
        assert process.stdout is not None
        child.reader = threading.Thread(target=self._pump, args=(child, process.stdout),
                                        name=f"pyrolab-up-{child.spec.name}", daemon=True)
        child.reader.start()
        self.say(f"{child.spec.name} started (pid {process.pid})", child)

    def _wait_port(self, address: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            if answers(address):
                return True
            time.sleep(0.1)
        return False

    def _reap(self, child: _Child, code: int) -> None:
        """A child died on its own: schedule its restart, or give up on a crash loop."""
        now = time.monotonic()
        lived = now - child.started
        self._close_pipes(child)
        child.process = None
        while child.restarts and now - child.restarts[0] > self.policy.window:
            child.restarts.popleft()
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if len(child.restarts) >= self.policy.max_restarts:
            child.given_up = True
            self.say(f"{child.spec.name} {how}; it crashed {len(child.restarts) + 1} times in "
                     f"{self.policy.window:g} s; not restarting it; see {self.logs / (child.spec.name + '.log')}",
                     child)
            return
        child.backoff = (self.policy.first if lived >= self.policy.stable or not child.backoff
                         else min(child.backoff * 2, self.policy.cap))
        child.restart_at = now + child.backoff
        child.restarts.append(now)
        child.restarted += 1
        self.say(f"{child.spec.name} {how} after {lived:.1f} s; restarting in {child.backoff:g} s", child)

    @staticmethod
    def _close_pipes(child: _Child) -> None:
        if child.reader is not None:
            child.reader.join(timeout=2)
        if child.process is not None and child.process.stdin is not None:
            try:
                child.process.stdin.close()
            except OSError:
                pass

    def request_stop(self) -> None:
        """Stop every child (as the first Ctrl-C does); a second call kills them at once."""
        if self._stop.is_set():
            self._kill.set()
        self._stop.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.is_set():
            self._kill.set()
            self._echo("up", "1", "second interrupt: killing every child now")
        else:
            self._echo("up", "1", f"{signal.Signals(signum).name}: stopping every child "
                                  f"(up to {self.stop_timeout:g} s; Ctrl-C again to kill)")
        self._stop.set()

    def run(self, install_signals: bool = True) -> int:
        """Start everything and supervise until stopped; 0 on a clean stop, 1 if a child had to be killed."""
        if install_signals:
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)
        self.say(f"logs in {self.logs}")
        try:
            for i, child in enumerate(self.children):
                if self._stop.is_set():
                    break
                self._spawn(child)
                if i == 0 and self.wait_for and child.spec.name == "nameserver":
                    if not self._wait_port(self.wait_for, 15.0) and not self._stop.is_set():
                        self.say(f"the nameserver does not answer at {self.wait_for} yet; "
                                 "starting the daemons anyway (they retry)")
            while not self._stop.wait(_TICK):
                self._tick()
        finally:
            clean = self._stop_all()
            self._console.close()
        return 0 if clean else 1

    def _tick(self) -> None:
        while True:  # control requests run here, on the loop's thread: no child changes under another's feet
            try:
                work, reply = self._requests.get_nowait()
            except queue.Empty:
                break
            try:
                reply.put(work())
            except Exception as err:  # noqa: BLE001 - a failed request is answered, the lab keeps running
                reply.put({"error": f"{type(err).__name__}: {err}"})
        now = time.monotonic()
        for child in self.children:
            if child.given_up:
                continue
            if child.process is not None:
                code = child.process.poll()
                if code is not None:
                    self._reap(child, code)
            elif child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)

    # control: what ``pyrolab ps`` / ``reload`` / ``down`` ask, run on the loop's thread

    def call(self, work: Callable[[], dict[str, Any]], timeout: float = _CONTROL_WAIT) -> dict[str, Any]:
        """Run ``work`` on the supervisor's loop and return its answer (from any thread)."""
        reply: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1)
        self._requests.put((work, reply))
        try:
            return reply.get(timeout=timeout)
        except queue.Empty:
            return {"error": f"the supervisor did not answer within {timeout:g} s"}

    def status(self) -> dict[str, Any]:
        """One row per child: name, pid, state, restarts, uptime (s), port."""
        now = time.monotonic()
        rows = []
        for child in self.children:
            running = child.process is not None and child.process.poll() is None
            state = ("running" if running else "given up" if child.given_up
                     else "restarting" if child.restart_at is not None else "stopped")
            rows.append({"name": child.spec.name, "pid": child.process.pid if running and child.process else None,
                         "state": state, "restarts": child.restarted,
                         "uptime": round(now - child.started, 1) if running else None, "port": child.port})
        return {"pid": os.getpid(), "processes": rows}

    def apply(self, specs: list[ChildSpec]) -> dict[str, Any]:
        """Make the running set match ``specs``: restart the changed, start the new, stop the removed.

        A child whose command line is unchanged is not touched: same process, connections and locks.
        """
        wanted = {spec.name: spec for spec in specs}
        current = {child.spec.name: child for child in self.children}
        removed = [c for name, c in current.items() if name not in wanted]
        changed = [c for name, c in current.items() if name in wanted and wanted[name].argv != c.spec.argv]
        added = [spec for name, spec in wanted.items() if name not in current]
        deadline = time.monotonic() + self.stop_timeout
        for child in removed + changed:
            self._stop_one(child, deadline)
        for child in removed:
            self.say(f"{child.spec.name} removed from the lab file", child)
        for child in changed:
            child.spec = wanted[child.spec.name]
            child.given_up, child.backoff, child.restart_at = False, 0.0, None
            child.restarts.clear()
            self.say(f"{child.spec.name}: configuration changed; restarting it", child)
            self._spawn(child)
        fresh = [_Child(spec, _COLOURS[(len(self.children) + i) % len(_COLOURS)], self._file_logger(spec.name))
                 for i, spec in enumerate(added)]
        keep = {c.spec.name for c in removed}
        self.children = [c for c in self.children if c.spec.name not in keep] + fresh
        for child in fresh:
            self.say(f"{child.spec.name}: new in the lab file", child)
            self._spawn(child)
        order = {spec.name: i for i, spec in enumerate(specs)}
        self.children.sort(key=lambda c: order[c.spec.name])
        return {"restarted": [c.spec.name for c in changed], "started": [s.name for s in added],
                "stopped": [c.spec.name for c in removed],
                "unchanged": [n for n in current if n in wanted and n not in {c.spec.name for c in changed}]}

    def _stop_one(self, child: _Child, deadline: float) -> None:
        if child.process is not None and child.process.poll() is None:
            try:
                child.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            self._await_exit(child, deadline)
        self._close_pipes(child)
        child.process, child.restart_at = None, None

    def _stop_all(self) -> bool:
        """SIGTERM the daemons, then the nameserver (so daemons can unregister); kill what outlives the deadline."""
        deadline = time.monotonic() + self.stop_timeout
        clean = True
        first_last = [[c for c in self.children if c.spec.name != "nameserver"],
                      [c for c in self.children if c.spec.name == "nameserver"]]
        for group in first_last:
            running = [c for c in group if c.process is not None and c.process.poll() is None]
            for child in running:
                try:
                    assert child.process is not None
                    child.process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
            for child in running:
                clean = self._await_exit(child, deadline) and clean
        for child in self.children:
            self._close_pipes(child)
            child.process = None
        return clean

    def _await_exit(self, child: _Child, deadline: float) -> bool:
        process = child.process
        assert process is not None
        while process.poll() is None and time.monotonic() < deadline and not self._kill.is_set():
            try:
                process.wait(_TICK)
            except subprocess.TimeoutExpired:
                pass
        if process.poll() is None:
            process.kill()
            process.wait(5)
            self.say(f"{child.spec.name} did not stop in time; killed", child)
            return False
        self.say(f"{child.spec.name} stopped", child)
        return True
