"""The record of every state-changing call a daemon serves, and ``history()`` over it.

A record is one JSON line: time, who (identity), service, member, kind
(``call``/``set``/``lock``/``unlock``/``force_unlock``), the arguments
(truncated), the outcome (``ok`` or the error's type) and, when the caller is a
kernel, the notebook and execution count. The request thread only puts the
record on a queue; a stdlib ``QueueListener`` turns it into JSON and writes it to a
``RotatingFileHandler`` (which flushes every line) on its own thread, so a call
never waits for the disk and ``kill -9`` loses at most what is still queued.
The last records also stay in memory, so ``history()`` works without a file.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import logging.handlers
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "NOTEBOOK_ANNOTATION", "AuditLog", "call_context", "summarize"]

KINDS = ("call", "set", "lock", "unlock", "force_unlock")
NOTEBOOK_ANNOTATION = "PLNB"  # Pyro5 annotation (4 bytes) a kernel sends with each call: notebook, execution count

_TEXT = 200  # characters kept of any one value
_ITEMS = 20  # items kept of a list or dict
_MEMORY = 2000  # records kept in memory for history()
_TAIL_BYTES = 4 << 20  # bytes read from the end of a file for history()
_MAX_HISTORY = 10_000


_SCALARS = frozenset({type(None), bool, int, float})


def summarize(value: Any, depth: int = 0) -> Any:
    """A small JSON-safe stand-in for an argument: big or odd values become short descriptions."""
    kind = type(value)
    if kind in _SCALARS or value is None or isinstance(value, (bool, int, float)):
        return value
    if kind is list and len(value) <= _ITEMS and all(type(v) in _SCALARS for v in value):
        return list(value)  # the common case (a few numbers), without a call per item
    if isinstance(value, str):
        return value if len(value) <= _TEXT else value[:_TEXT] + f"... ({len(value)} chars)"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:  # numpy arrays and scalars, without importing numpy
        return f"<array {dtype} {tuple(shape)}>" if shape else summarize(value.item(), depth)
    if depth < 2 and isinstance(value, (list, tuple)):
        items = [summarize(v, depth + 1) for v in value[:_ITEMS]]
        return items + ([f"... ({len(value)} items)"] if len(value) > _ITEMS else [])
    if depth < 2 and isinstance(value, dict):
        keys = list(value)[:_ITEMS]
        return {str(k)[:_TEXT]: summarize(value[k], depth + 1) for k in keys}
    text = repr(value)
    return text if len(text) <= _TEXT else text[:_TEXT] + "..."


def call_context(annotations: Any) -> dict[str, Any]:
    """The notebook and execution count a kernel sent with a call; {} when none (or when malformed)."""
    raw = annotations.get(NOTEBOOK_ANNOTATION) if isinstance(annotations, dict) else None
    if not isinstance(raw, (bytes, bytearray, memoryview)) or len(raw) > 2048:
        return {}
    try:
        data = json.loads(bytes(raw))
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    if isinstance(data.get("notebook"), str):
        out["notebook"] = data["notebook"][:_TEXT]
    if isinstance(data.get("execution_count"), int) and not isinstance(data["execution_count"], bool):
        out["execution_count"] = data["execution_count"]
    return out


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return str(record.msg)


class _Writer(logging.handlers.QueueListener):
    """Takes records as plain dicts; turning one into a JSON line (and a LogRecord) is the writer
    thread's work, not the calling request's."""

    def prepare(self, record: Any) -> logging.LogRecord:
        line = json.dumps(record, default=str)
        return logging.LogRecord("pyrolab.audit", logging.INFO, "", 0, line, None, None)


class AuditLog:
    """One daemon's audit trail: in memory, and in a rotated JSON-lines file when ``path`` is given.

    Parameters
    ----------
    path:
        The file (e.g. ``logs/bench1.audit.jsonl``); None keeps records in memory only.
    max_bytes, backups:
        Rotation: ``path`` is renamed ``path.1`` (and so on, ``backups`` kept) past ``max_bytes``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, max_bytes: int = 10 << 20,
                 backups: int = 5) -> None:
        self.path = Path(path) if path is not None else None
        self._memory: collections.deque[dict[str, Any]] = collections.deque(maxlen=_MEMORY)
        self._mutex = threading.Lock()
        self._queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._listener: logging.handlers.QueueListener | None = None
        self._handler: logging.Handler | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=backups,
                                                           encoding="utf-8", delay=True)
            handler.setFormatter(_JsonLines())
            self._handler = handler
            self._listener = _Writer(self._queue, handler)
            self._listener.start()
            atexit.register(self.close)

    def record(self, who: str, service: str, member: str, kind: str, args: Any = (), outcome: str = "ok",
               error: str | None = None, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add one record; returns it. Never blocks on the disk."""
        entry: dict[str, Any] = {"time": time.time(), "who": who, "service": service, "member": member,
                                 "kind": kind, "args": summarize(list(args)), "outcome": outcome}
        if error is not None:
            entry["error"] = summarize(error)
        if context:
            entry.update(context)
        with self._mutex:
            self._memory.append(entry)
        if self._listener is not None:
            self._queue.put(entry)  # written as JSON by the writer thread
        return entry

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (up to ``timeout``) until every queued record is on disk."""
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.005)  # the listener took it off the queue; let it finish the write

    def history(self, service: str | None = None, n: int = 50) -> list[dict[str, Any]]:
        """The last ``n`` records (of ``service``, or all), oldest first."""
        n = max(0, min(int(n), _MAX_HISTORY))
        if n == 0:
            return []
        with self._mutex:
            kept = [r for r in self._memory if service is None or r["service"] == service]
        if len(kept) >= n or self.path is None:
            return kept[-n:]
        self.flush()
        return _read_tail(self.path, service, n)

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        listener, self._listener = self._listener, None
        if listener is not None:
            atexit.unregister(self.close)
            listener.stop()  # drains the queue first
        if self._handler is not None:
            self._handler.close()


def _read_tail(path: Path, service: str | None, n: int) -> list[dict[str, Any]]:
    """The last ``n`` matching records of ``path`` and its rotated files, oldest first."""
    found: list[dict[str, Any]] = []
    budget = _TAIL_BYTES
    for file in [path] + [path.with_name(f"{path.name}.{i}") for i in range(1, 10)]:
        if len(found) >= n or budget <= 0 or not file.is_file():
            break
        with open(file, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - budget)
            f.seek(start)
            data = f.read()
        budget -= len(data)
        lines = data.split(b"\n")
        if start > 0:
            lines = lines[1:]  # the first one is cut
        records = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line after kill -9, or a cut one
            if isinstance(record, dict) and (service is None or record.get("service") == service):
                records.append(record)
        found = records + found
    return found[-n:]
