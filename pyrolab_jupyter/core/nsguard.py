"""The nameserver's write rules: roles under TLS, no hijacking of a live name, a log line for every takeover.

Under TLS only a ``daemon`` certificate may register or remove names. With or
without TLS, a ``register`` that would point a name at another daemon is
refused while the current owner (the daemon location in the entry's URI)
answers a ping made right then; a dead owner's name is taken over at once (a
restarted daemon comes back on a new port). Every replacement and removal is
logged with the peer's address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from Pyro5.callcontext import current_context
from Pyro5.core import URI
from Pyro5.errors import PyroError

from pyrolab_jupyter.core.errors import AccessDenied
from pyrolab_jupyter.core.proxies import new_proxy
from pyrolab_jupyter.core.security import Peer, Security
from pyrolab_jupyter.core.tls import peer_of

__all__ = ["RegistryGuard", "ping_daemon"]

log = logging.getLogger("pyrolab_jupyter.core.nameserver")


def ping_daemon(location: str, timeout: float, security: Security | None) -> bool:
    """Whether the Pyro daemon at ``host:port`` answers a ping within ``timeout``."""
    try:
        with new_proxy(f"PYRO:Pyro.Daemon@{location}", timeout, security) as daemon:
            # not as this process's client identity: a ping closing must not look like a lock holder leaving
            daemon._pyroHandshake = "hello"
            daemon.ping()
        return True
    except (PyroError, OSError):
        return False


def _location(uri: Any) -> str | None:
    try:
        return str(URI(str(uri)).location)
    except PyroError:
        return None


def caller() -> tuple[str, Peer | None]:
    """The address and (under TLS) the certificate of the peer whose request is being served."""
    conn = current_context.client
    sock = getattr(conn, "sock", None)
    try:
        address = "%s:%s" % sock.getpeername()[:2] if sock is not None else "this process"
    except (OSError, TypeError):
        address = "unknown address"
    return address, peer_of(sock)


class RegistryGuard:
    """Decides whether the current request may write to the registry; logs what it lets through."""

    def __init__(self, security: Security | None, ping: Callable[[str], bool] | None = None,
                 ping_timeout: float = 1.0) -> None:
        self.security = security
        self._ping = ping or (lambda location: ping_daemon(location, ping_timeout, security))

    def check_role(self, what: str) -> tuple[str, Peer | None]:
        """Raise ``AccessDenied`` unless the caller may write (any plain caller; a ``daemon`` under TLS)."""
        address, peer = caller()
        if self.security is not None and address != "this process" and (peer is None or not peer.may_register):
            who = f"{peer.name} (role {peer.role or 'none'})" if peer else "a caller without a certificate"
            log.warning("refused %s from %s at %s: not a daemon certificate", what, who, address)
            raise AccessDenied(f"{what} refused: {who} may look up and call, but only a daemon certificate "
                               "(OU=daemon) may write to the nameserver")
        return address, peer

    def check_register(self, name: str, uri: Any, current: Any) -> None:
        """Refuse pointing ``name`` away from a live owner; log a takeover from a dead one."""
        address, peer = self.check_role(f"register {name!r}")
        if current is None:
            return
        old, new = _location(current), _location(uri)
        if old is None or old == new:
            return  # a heartbeat, or a malformed old entry anyone may fix
        who = f"{peer.name} at {address}" if peer else address
        if self._ping(old):
            log.warning("refused register %r -> %s from %s: the name belongs to the live daemon at %s",
                        name, uri, who, old)
            raise AccessDenied(f"register {name!r} refused: it is registered by a live daemon at {old}; "
                               "stop that daemon first, or choose another name")
        log.warning("%r replaced: %s -> %s by %s (the old daemon at %s did not answer)", name, current, uri, who, old)

    def removed(self, names: list[str]) -> None:
        """Log a removal the caller was allowed to make."""
        if names:
            address, peer = caller()
            who = f"{peer.name} at {address}" if peer else address
            log.info("removed %s by %s", ", ".join(repr(n) for n in sorted(names)[:20]) +
                        (f" and {len(names) - 20} more" if len(names) > 20 else ""), who)
