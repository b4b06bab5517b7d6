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

import json
import logging
import logging.handlers
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from pyrolab_jupyter import serving
from pyrolab_jupyter.core.config import LabConfig, parse_address

__all__ = ["ChildSpec", "RestartPolicy", "Supervisor", "answers", "lab_children", "logs_folder"]


_COLOURS = ("36", "33", "35", "32", "34", "31")  # cyan, yellow, magenta, green, blue, red
_TICK = 0.05
_CONSOLE_LINES = 2000  # console lines buffered while the console does not take them; older ones are dropped
_CONSOLE_WAIT = 0.2  # seconds a line waits for a full console before it is dropped
_CONSOLE_LINE_BYTES = 4000  # under PIPE_BUF: a writable pipe takes the whole line without blocking


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


def lab_children(lab: LabConfig, python: str = sys.executable, parts: Collection[str] | None = None,
                 state_dir: Path | None = None) -> list[ChildSpec]:
    """The processes a lab file asks for: its nameserver (unless ``external``), then one per daemon.

    ``parts`` keeps only the named ones (``"nameserver"``, daemon names): this PC's share of the lab.
    With ``state_dir`` (the logs folder) each daemon keeps its lock table there, so a restart keeps the locks.
    """
    ns = lab.nameserver
    specs = []
    if not ns.external and (parts is None or "nameserver" in parts):
        order = {"host": ns.host, "port": ns.port, "check_interval": ns.check_interval,
                 "on_offline": ns.on_offline, "storage": ns.storage, "max_message": lab.max_message(ns)}
        specs.append(ChildSpec("nameserver", [python, "-m", serving.__name__, "nameserver", json.dumps(order)]))
    for name, daemon in lab.daemons.items():
        if parts is not None and name not in parts:
            continue
        services = {sname: {"class": s.class_path, "args": s.args, "description": s.description or None,
                             "thread_safe": s.thread_safe, "adapter": s.adapter, "instance_mode": s.instance_mode,
                             **s.safety()}
                    for sname, s in daemon.services.items()}
        order = {"services": services, "nameserver": [ns.address, *daemon.nameservers] if daemon.nameservers else ns.address,
                 "host": daemon.host, "port": daemon.port,
                 "heartbeat": daemon.heartbeat, "max_message": lab.max_message(daemon),
                 "state_file": str(state_dir / f"{name}.locks.json") if state_dir is not None else None,
                 "advertise": daemon.advertise}
        specs.append(ChildSpec(name, [python, "-m", serving.__name__, "daemon", json.dumps(order)]))
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
                 stop_timeout: float = 10.0, env: Mapping[str, str] | None = None, own_log: str = "up") -> None:
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
            child.logger.info("%s", line)
            self._echo(child.spec.name, child.colour, line)
        stream.close()

    # lifecycle

    def _spawn(self, child: _Child) -> None:
        process = subprocess.Popen(child.spec.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=self.env,
                                   start_new_session=True)  # Ctrl-C reaches us; we stop the children
        child.process, child.started, child.restart_at = process, time.monotonic(), None
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
