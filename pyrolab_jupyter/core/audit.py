"""The record of every state-changing call a daemon serves, and ``history()`` over it.

A record is one JSON line: time, who (identity), service, member, kind
(``call``/``set``/``lock``/``unlock``/``force_unlock``), the arguments
(truncated), the outcome (``ok`` or the error's type) and, when the caller is a
kernel, the notebook and execution count. The request thread only puts the
record on a queue; a writer thread gathers the records of 50 ms, turns them into
JSON lines and writes them to a ``RotatingFileHandler`` at once (one write, one
flush), so a call never waits for the disk and ``kill -9`` loses at most the
last 50 ms of records.
The last records also stay in memory, so ``history()`` works without a file.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import logging
import logging.handlers
import os
import queue
import threading
import time
from collections.abc import Callable
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
    if kind is list and len(value) <= _ITEMS and _SCALARS.issuperset(map(type, value)):
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


_GATHER = 0.05  # seconds a burst of records gathers on the writer thread before one write
_JSON = json.JSONEncoder(default=str)


def _json_lines() -> Callable[[dict[str, Any]], str]:
    """One record's JSON line, as ``_JSON.encode`` writes it, from a C encoder made once (``encode`` makes one per
    record: a third of the writer's time). Without the C speedups, ``_JSON.encode``."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _JSON.encode
    write = make(None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda entry: "".join(write(entry, 0))
_STOP: dict[str, Any] = {}


class _Writer:
    """The audit file's own thread: records that arrive within ``_GATHER`` seconds become JSON lines in
    one write and one flush, so a busy daemon pays one wake-up and one write per burst, not per call
    (measured: per-record writes cost about a fifth of a short call)."""

    def __init__(self, records: queue.SimpleQueue[dict[str, Any]], handler: logging.Handler) -> None:
        self._records = records
        self._handler = handler
        self.written = 0
        self._line = _json_lines()
        self._thread = threading.Thread(target=self._run, name="pyrolab-audit-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._records.get()]
            if batch[0] is not _STOP:
                time.sleep(_GATHER)
            while True:
                try:
                    batch.append(self._records.get_nowait())
                except queue.Empty:
                    break
            entries = [entry for entry in batch if entry is not _STOP]
            stopping = len(entries) != len(batch)
            if entries:
                text = "\n".join(map(self._line, entries))
                self._handler.handle(logging.LogRecord("pyrolab.audit", logging.INFO, "", 0, text, None, None))
            self.written += len(entries)

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self._records.put(_STOP)
        self._thread.join(timeout=10)


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
        self._queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._listener: _Writer | None = None
        self._issued = itertools.count(1)
        self._recorded = 0  # records handed to the writer (flush waits for it to have written them)
        self._handler: logging.Handler | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=backups,
                                                           encoding="utf-8", delay=True)
            handler.setFormatter(_JsonLines())
            self._handler = handler
            self._listener = _Writer(self._queue, handler)
            atexit.register(self.close)

    def record(self, who: str, service: str, member: str, kind: str, args: Any = (), outcome: str = "ok",
               error: str | None = None, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add one record; returns it. Never blocks on the disk."""
        entry: dict[str, Any] = {"time": time.time(), "who": who, "service": service, "member": member,
                                 "kind": kind, "args": summarize(args if type(args) is list else list(args)), "outcome": outcome}
        if error is not None:
            entry["error"] = summarize(error)
        if context:
            entry.update(context)
        self._memory.append(entry)  # atomic; history() copies the deque in one step
        if self._listener is not None:
            self._recorded = next(self._issued)  # atomic: records from several workers are all counted
            self._queue.put(entry)  # written as JSON by the writer thread
        return entry

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (up to ``timeout``) until every queued record is on disk."""
        deadline = time.monotonic() + timeout
        target = self._recorded
        while self._listener is not None and self._listener.written < target and time.monotonic() < deadline:
            time.sleep(0.005)

    def history(self, service: str | None = None, n: int = 50) -> list[dict[str, Any]]:
        """The last ``n`` records (of ``service``, or all), oldest first."""
        n = max(0, min(int(n), _MAX_HISTORY))
        if n == 0:
            return []
        kept = [r for r in list(self._memory) if service is None or r["service"] == service]
        if len(kept) >= n or self.path is None:
            return kept[-n:]
        self.flush()
        return _read_tail(self.path, service, n)

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        listener, self._listener = self._listener, None
        if listener is not None:
            atexit.unregister(self.close)
            listener.stop()  # writes what is queued first
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
