"""``lab.snapshot()``: the state of every online service, one round trip per daemon, and a code fingerprint.

Each daemon answers for all the services it hosts (``pyrolab_snapshot`` on any
of them). A class's version is a git-like hash (sha1 over a ``blob`` header
and its source), so two runs of the same code on the same lab have the same
fingerprint, and a changed driver shows up as a changed fingerprint.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import time
from typing import TYPE_CHECKING, Any

from Pyro5.core import URI
from Pyro5.errors import PyroError

from pyrolab_jupyter.core.connections import client_handshake
from pyrolab_jupyter.core.proxies import new_proxy
from pyrolab_jupyter.core.serialization import decode

if TYPE_CHECKING:
    from pyrolab_jupyter.core.client import Lab

__all__ = ["class_version", "fingerprint", "take_snapshot"]

_ARRAY_ITEMS = 10_000  # larger arrays are summarised, not written into the snapshot
_versions: dict[type, str] = {}


def _git_hash(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def class_version(cls: type) -> str:
    """A git-like hash of the class's source (of its description where the source is unavailable)."""
    found = _versions.get(cls)
    if found is None:
        try:
            data = inspect.getsource(cls).encode()
        except (OSError, TypeError):
            data = f"{cls.__module__}.{cls.__qualname__}".encode()
        found = _versions[cls] = _git_hash(data)
    return found


def fingerprint(services: dict[str, dict[str, Any]]) -> str:
    """One hash over every service's name, class and class version."""
    lines = sorted(f"{name} {s.get('class')} {s.get('version')}" for name, s in services.items())
    return _git_hash("\n".join(lines).encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy, without importing it here
        size = getattr(value, "size", 0)
        if size > _ARRAY_ITEMS:
            return {"__array__": str(value.dtype), "shape": list(value.shape), "omitted": "too large"}
        return value.tolist()
    if isinstance(value, bytes):
        return {"__bytes__": len(value)}
    return value


def _taken_by(lab: Lab) -> str:
    if lab.security is not None:
        return f"{lab.security.identity.name} (pid {os.getpid()})"
    return f"{client_handshake()['pyrolab']['identity']} (unverified)"


def take_snapshot(lab: Lab) -> dict[str, Any]:
    """What ``Lab.snapshot()`` returns (see there)."""
    started = time.time()
    by_daemon: dict[str, list[dict[str, Any]]] = {}
    for row in lab.services():
        if row["status"] != "online":
            continue
        try:
            by_daemon.setdefault(URI(row["uri"]).location, []).append(row)
        except PyroError:
            continue
    services: dict[str, dict[str, Any]] = {}
    unreachable: dict[str, str] = {}
    for location, rows in sorted(by_daemon.items()):
        names = {row["name"] for row in rows}
        try:
            with new_proxy(rows[0]["uri"], lab.timeout, lab.security) as proxy:
                answer = decode(proxy._pyroInvoke("pyrolab_snapshot", [], {}))
        except (PyroError, OSError, AttributeError) as err:
            for name in names:
                unreachable[name] = f"daemon at {location}: {type(err).__name__}: {err}"
            continue
        for name in sorted(names):
            if name in answer:
                services[name] = _jsonable(answer[name])
            else:
                unreachable[name] = f"daemon at {location} does not host it any more"
    snap = {
        "time": started,
        "iso_time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "nameserver": lab.address,
        "taken_by": _taken_by(lab),
        "fingerprint": fingerprint(services),
        "services": services,
        "unreachable": unreachable,
    }
    return snap
