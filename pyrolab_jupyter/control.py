"""The control channel of a running ``pyrolab up``: ``ps``, ``reload`` and ``down`` talk to it.

Each ``pyrolab up`` (foreground or ``--detach``) writes a state file beside its
logs (``up.json``, or ``up-PARTS.json`` for one PC's parts of a lab shared on a
network drive) naming its pid, host and a Unix socket. The socket is the only
control channel: it never listens on a network interface, so only a user of
this machine with access to the logs folder may steer the lab. One request is
one JSON line, one answer is one JSON line; a request is capped in size and
time, so a hostile or stuck client costs one connection, never the supervisor.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["AVAILABLE", "ControlServer", "UpState", "ask", "running_ups"]

AVAILABLE = hasattr(socket, "AF_UNIX")  # False on Windows' CPython: no ps/reload/down there (yet)

_MAX_REQUEST = 64 * 1024  # bytes: a control request is a few words
_IO_TIMEOUT = 5.0  # seconds a client has to send its request
_SUN_PATH = 100  # AF_UNIX paths are limited to ~104-108 bytes


def _socket_path(state_file: Path) -> Path:
    """``up.sock`` beside the state file, or a short path in the temp folder when that is too long."""
    near = state_file.with_suffix(".sock")
    if len(os.fsencode(near)) < _SUN_PATH:
        return near
    digest = hashlib.sha256(os.fsencode(near)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pyrolab-{digest}.sock"


@dataclass(frozen=True)
class UpState:
    """What a running ``pyrolab up`` left in its state file."""

    state_file: Path
    pid: int
    host: str
    socket: str
    lab: str
    parts: list[str]

    @property
    def here(self) -> bool:
        """True when it runs on this machine (a shared logs folder holds other PCs' files too)."""
        return self.host == socket.gethostname()


def running_ups(logs: Path) -> list[UpState]:
    """Every ``up*.json`` state file in ``logs`` (stale ones too: ``ask`` tells which answer)."""
    found = []
    for path in sorted(logs.glob("up*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found.append(UpState(path, int(data["pid"]), str(data["host"]), str(data["socket"]),
                                 str(data["lab"]), [str(p) for p in data["parts"]]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def ask(state: UpState, request: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Send one request to a running ``up``; its answer. ``OSError`` when nothing answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(state.socket)
        sock.sendall(json.dumps(request).encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = json.loads(b"".join(chunks) or b"null")
    if not isinstance(answer, dict):
        raise OSError("the supervisor closed the control connection without an answer")
    return answer


class ControlServer:
    """Serves control requests on a Unix socket from a thread; ``handle`` does the work (it may block)."""

    def __init__(self, state_file: Path, lab: str, parts: list[str],
                 handle: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.state_file = state_file
        self.socket_path = _socket_path(state_file)
        self._handle = handle
        self._lab, self._parts = lab, parts
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def start(self) -> None:
        """Listen, then write the state file (so a reader of it always finds the socket up)."""
        if self.socket_path.exists():
            try:  # a live supervisor already owns it: refuse; a stale file from a killed one: replace
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.settimeout(1.0)
                    probe.connect(str(self.socket_path))
                raise OSError(f"another `pyrolab up` of these parts already runs (its control socket "
                              f"{self.socket_path} answers); `pyrolab down {self._lab}` stops it")
            except (ConnectionRefusedError, FileNotFoundError, socket.timeout):
                self.socket_path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o077)  # only this user may connect
        try:
            sock.bind(str(self.socket_path))
        finally:
            os.umask(old_umask)
        sock.listen(8)
        sock.settimeout(0.2)
        self._sock = sock
        self.state_file.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "socket": str(self.socket_path),
            "lab": self._lab, "parts": self._parts}), encoding="utf-8")
        self._thread = threading.Thread(target=self._serve, name="pyrolab-up-control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            with conn:
                self._one(conn)

    def _one(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + _IO_TIMEOUT  # in all: a client that trickles bytes is cut off too
        data = b""
        try:
            while b"\n" not in data and len(data) <= _MAX_REQUEST:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OSError(f"no complete request within {_IO_TIMEOUT:g} s")
                conn.settimeout(left)
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            if len(data) > _MAX_REQUEST:
                answer: dict[str, Any] = {"error": f"request longer than {_MAX_REQUEST} bytes"}
            else:
                request = json.loads(data.split(b"\n", 1)[0] or b"null")
                answer = (self._handle(request) if isinstance(request, dict)
                          else {"error": "a request is one JSON object on one line"})
        except (OSError, ValueError) as err:
            answer = {"error": f"bad control request: {err}"}
        try:
            conn.settimeout(_IO_TIMEOUT)
            conn.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass

    def close(self) -> None:
        """Stop listening and remove the socket and the state file (only if still ours)."""
        self._closed.set()
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2)
        self.socket_path.unlink(missing_ok=True)
        try:
            if json.loads(self.state_file.read_text(encoding="utf-8")).get("pid") == os.getpid():
                self.state_file.unlink()
        except (OSError, ValueError):
            pass
