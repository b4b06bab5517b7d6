"""Nameserver addresses and the metadata a service carries in the nameserver.

Metadata are plain strings (Pyro5's format), so ``pyro5-nsc`` and plain
clients see them too: ``pyrolab.class=pkg.mod:Laser``, ``pyrolab.locked_by=...``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from pyrolab_jupyter.core.addresses import parse_address
from pyrolab_jupyter.core.errors import ConfigError

__all__ = [
    "CLIENT_MEMBERS",
    "DEFAULT_NAMESERVER",
    "ENV_NAMESERVER",
    "ENTRY_KEYS",
    "entry",
    "nameserver_address",
    "nameserver_addresses",
    "nameserver_uri",
    "parse_address",
]

DEFAULT_NAMESERVER = "127.0.0.1:9090"
ENV_NAMESERVER = "PYROLAB_NAMESERVER"
NAMESERVER_OBJECT = "Pyro.NameServer"

META_SERVICE = "pyrolab.service"
META_CLASS = "pyrolab.class="
META_DESCRIPTION = "pyrolab.description="
META_LOCKED_BY = "pyrolab.locked_by="
META_STATUS = "pyrolab.status="
META_LAST_SEEN = "pyrolab.last_seen="

# RemoteService's own API; a daemon refuses a service exposing one of these (it would be hidden)
CLIENT_MEMBERS = frozenset({"describe", "lock", "unlock", "force_unlock", "lock_info", "read_properties",
                            "subscribe", "disconnect", "soft_limits", "set_soft_limit", "history"})

ENTRY_KEYS = ("name", "uri", "status", "last_seen", "class", "description", "locked_by")


def nameserver_addresses(addresses: str | Sequence[str] | None = None) -> list[str]:
    """Every ``host:port`` to use, in order, duplicates dropped: those given (a list, or a comma-separated
    string: ``"pc1:9090,pc2:9090"``), else ``$PYROLAB_NAMESERVER`` (which may list several too), else
    127.0.0.1:9090. ``ConfigError`` names an entry that is not an address."""
    chosen = addresses or os.environ.get(ENV_NAMESERVER) or DEFAULT_NAMESERVER
    parts = [p.strip() for text in ([chosen] if isinstance(chosen, str) else chosen) for p in str(text).split(",")]
    if not any(parts):
        parts = [DEFAULT_NAMESERVER]
    found: list[str] = []
    for part in parts:
        if not part:
            raise ConfigError(f"nameserver list {chosen!r}: an empty entry; separate host:port entries by commas")
        host, port = parse_address(part)
        found.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return list(dict.fromkeys(found))


def nameserver_address(address: str | None = None) -> str:
    """The ``host:port`` to use: the one given, else ``$PYROLAB_NAMESERVER``, else 127.0.0.1:9090; the
    first where several are listed (what registers or hosts uses one; ``Lab`` asks them all)."""
    return nameserver_addresses(address)[0]


def nameserver_uri(address: str | None = None) -> str:
    """The Pyro URI of the nameserver object at ``address`` (see ``nameserver_address``)."""
    return f"PYRO:{NAMESERVER_OBJECT}@{nameserver_address(address)}"


def _meta_value(metadata: Iterable[str], prefix: str) -> str | None:
    for item in metadata:
        if item.startswith(prefix):
            return item[len(prefix):]
    return None


def entry(name: str, uri: str, metadata: Iterable[str], status: str, last_seen: float | None) -> dict[str, Any]:
    """One row of ``lab.services()`` and of the REST payload."""
    metadata = list(metadata or ())
    return {
        "name": name,
        "uri": uri,
        "status": status,
        "last_seen": last_seen,
        "class": _meta_value(metadata, META_CLASS),
        "description": _meta_value(metadata, META_DESCRIPTION) or "",
        "locked_by": _meta_value(metadata, META_LOCKED_BY),
    }
