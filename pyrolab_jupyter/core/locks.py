"""Leased, identity-bearing locks, one per service, held by a client process.

A lock belongs to a client *process* (its ``client_id``): every thread and
proxy of that process acts as the holder. It ends on release, on lease
expiry, or when the daemon sees the holder's last connection close.

The table can be saved to a file on every change and loaded by the next run
of the same daemon (``pyrolab up`` restarting it after a crash): a restored
lock is kept for its holder until its lease ends, provided the holder
reconnects within ``reclaim`` seconds (else it exited meanwhile).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Collection
from pathlib import Path

from pyrolab_jupyter.core.errors import ServiceLocked

__all__ = ["ClientInfo", "Lease", "LockTable"]

log = logging.getLogger(__name__)

RECLAIM = 60.0  # seconds a restored lock waits for its holder to reconnect


@dataclasses.dataclass(frozen=True)
class ClientInfo:
    """Who is calling: a per-process id, a readable identity and, under TLS, the certificate's role."""

    client_id: str
    identity: str
    role: str | None = None  # the certificate's OU; None without TLS
    verified: bool = False  # identity from a certificate (TLS) rather than self-declared


@dataclasses.dataclass(frozen=True)
class Lease:
    holder: ClientInfo
    since: float
    expires: float | None  # time.time() based; None for no expiry

    def remaining(self, now: float | None = None) -> float | None:
        if self.expires is None:
            return None
        return max(0.0, self.expires - (time.time() if now is None else now))

    def describe(self, service: str) -> str:
        since = time.strftime("%H:%M:%S", time.localtime(self.since))
        left = self.remaining()
        lease = "" if left is None else f", lease ends in {left:.0f} s"
        return f"{service} is locked by {self.holder.identity} since {since}{lease}"


class LockTable:
    """The locks of one daemon's services; safe to use from any thread."""

    def __init__(self, path: str | Path | None = None, reclaim: float = RECLAIM) -> None:
        self._leases: dict[str, Lease] = {}
        self._mutex = threading.Lock()
        self._path = Path(path) if path is not None else None
        self._unclaimed: dict[str, float] = {}  # restored service -> time.time() by which its holder must be back
        if self._path is not None:
            self._load(reclaim)

    # persistence

    def _load(self, reclaim: float) -> None:
        assert self._path is not None
        try:
            rows = json.loads(self._path.read_text())
            now = time.time()
            for service, row in rows.items():
                lease = Lease(ClientInfo(str(row["client_id"]), str(row["identity"])), float(row["since"]),
                              None if row["expires"] is None else float(row["expires"]))
                if lease.expires is None or lease.expires > now:
                    self._leases[service] = lease
                    self._unclaimed[service] = now + reclaim
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("cannot restore locks from %s (%s); starting with none", self._path, err)
            return
        if self._leases:
            log.info("restored locks on %s; kept while their holders reconnect within %.0f s",
                     ", ".join(sorted(self._leases)), reclaim)

    def save(self) -> None:
        """Write the table (atomically) where the next run of this daemon will look."""
        if self._path is None:
            return
        with self._mutex:
            rows = {s: {**dataclasses.asdict(lease.holder), "since": lease.since, "expires": lease.expires}
                    for s, lease in self._leases.items()}
        tmp = self._path.with_name(self._path.name + ".tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(rows))
            os.replace(tmp, self._path)
        except OSError as err:
            log.warning("cannot save the locks to %s: %s (a restart would lose them)", self._path, err)

    def holds_any(self, client_id: str) -> bool:
        with self._mutex:
            return any(lease.holder.client_id == client_id for lease in self._leases.values())

    def _current(self, service: str, now: float) -> Lease | None:
        lease = self._leases.get(service)
        if lease is not None and lease.expires is not None and lease.expires <= now:
            del self._leases[service]
            return None
        return lease

    def holder(self, service: str) -> Lease | None:
        with self._mutex:
            return self._current(service, time.time())

    def acquire(self, service: str, client: ClientInfo, lease: float | None) -> Lease:
        """Take the lock, or renew it when ``client`` already holds it."""
        if lease is not None and lease <= 0:
            raise ValueError(f"lease={lease!r}: a lease must be a positive number of seconds or None")
        now = time.time()
        with self._mutex:
            current = self._current(service, now)
            if current is not None and current.holder.client_id != client.client_id:
                raise ServiceLocked(current.describe(service) + "; wait, ask them to unlock, or force_unlock()")
            since = current.since if current is not None else now
            new = Lease(client, since, None if lease is None else now + lease)
            self._leases[service] = new
            return new

    def release(self, service: str, client: ClientInfo) -> bool:
        """Release the caller's lock; True if one was held. Another's lock is refused."""
        with self._mutex:
            current = self._current(service, time.time())
            if current is None:
                return False
            if current.holder.client_id != client.client_id:
                raise ServiceLocked(current.describe(service) + "; only the holder may unlock (or use force_unlock())")
            del self._leases[service]
            return True

    def force_release(self, service: str) -> Lease | None:
        with self._mutex:
            return self._leases.pop(service, None)

    def check(self, service: str, client: ClientInfo) -> None:
        """Raise ``ServiceLocked`` when someone other than ``client`` holds the lock."""
        if service not in self._leases:  # the usual case, on every call: no mutex needed to see it
            return
        with self._mutex:
            current = self._current(service, time.time())
        if current is not None and current.holder.client_id != client.client_id:
            raise ServiceLocked(current.describe(service) + "; wait for the lease to end or ask them to unlock")

    def release_client(self, client_id: str) -> list[str]:
        """Drop every lock of a client that has gone; returns the services freed."""
        with self._mutex:
            gone = [s for s, lease in self._leases.items() if lease.holder.client_id == client_id]
            for service in gone:
                del self._leases[service]
            return gone

    def expire(self, connected: Collection[str] = ()) -> list[str]:
        """Drop leases that ran out, and restored ones whose holder did not come back; returns the services freed.

        ``connected``: the client ids connected now (a restored lock's holder among them has reclaimed it).
        """
        now = time.time()
        with self._mutex:
            for service in [s for s in self._unclaimed if self._leases.get(s) is None
                            or self._leases[s].holder.client_id in connected]:
                del self._unclaimed[service]
            gone = [s for s, lease in self._leases.items() if lease.expires is not None and lease.expires <= now]
            gone += [s for s, deadline in self._unclaimed.items() if deadline <= now and s not in gone]
            for service in gone:
                del self._leases[service]
                self._unclaimed.pop(service, None)
            return gone
