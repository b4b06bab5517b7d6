"""Delivery of changes from a daemon to subscribed clients (push, not poll), bounded per subscriber.

Each subscriber has its own coalescing mailbox (the latest value per
property) and its own delivery thread, so a slow or dead subscriber delays
nobody else: a delivery that fails or outlasts ``delivery_timeout`` drops the
subscribers of that client process (they share one connection to its
receiver) and nobody else. Subscriptions are capped per client process and per daemon,
and a daemon calls back only the address a subscription came from.

Besides property values, subscribers get two pseudo-properties:
``pyrolab.locked_by`` (the lock holder, None when unlocked) and
``pyrolab.call`` (a completed state-changing call: member, caller, outcome
and the properties it may have changed, which the client then re-reads).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from Pyro5.api import Proxy
from Pyro5.core import URI
from Pyro5.errors import CommunicationError, PyroError

from pyrolab_jupyter.core.errors import AccessDenied, InvalidArgument
from pyrolab_jupyter.core.mailbox import Mailbox
from pyrolab_jupyter.core.poller import Poller
from pyrolab_jupyter.core.proxies import new_proxy
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.serialization import pushed

__all__ = ["CALL_PROPERTY", "LOCK_PROPERTY", "Publisher", "SubscriptionLimits"]

log = logging.getLogger(__name__)

LOCK_PROPERTY = "pyrolab.locked_by"  # pseudo-property announced when the lock holder changes (None: unlocked)
CALL_PROPERTY = "pyrolab.call"  # pseudo-property announcing a completed state-changing call

_MAX_TOKEN = 64
_MAX_URI = 512

Snapshot = Callable[[], dict[str, Any]]  # current values, already encoded, of every property


@dataclasses.dataclass(frozen=True)
class SubscriptionLimits:
    """How much a daemon spends on subscribers; one place for the defaults."""

    delivery_timeout: float = 3.0  # a subscriber that does not take an update within this is dropped
    per_client: int = 16  # subscriptions one client process may hold on one daemon
    per_daemon: int = 64  # subscriptions a daemon serves in all (one delivery thread each)


def merge_calls(waiting: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Two call announcements not yet delivered become one: the latest call, the union of what may have changed."""
    old, fresh = waiting.get("changes"), new.get("changes")
    changes = None if old is None or fresh is None else sorted(set(old) | set(fresh))
    return {**new, "changes": changes}


class _Subscriber:
    """One subscription: its mailbox and the thread that delivers it."""

    def __init__(self, token: str, service: str, uri: str, client_id: str) -> None:
        self.token = token
        self.service = service
        self.uri = uri
        self.client_id = client_id
        self.mailbox = Mailbox()
        self.thread: threading.Thread | None = None

    def put(self, prop: str, value: Any, stamp: float) -> None:
        self.mailbox.put(prop, value, stamp, merge_calls if prop == CALL_PROPERTY else None)


class _Link:
    """One connection to a client process's receiver, shared by that client's subscribers (one at a time).

    One per client, not one per subscription: a kernel with many panels holds
    few of its receiver's worker threads, and a dead receiver is found once.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.lock = threading.Lock()
        self.proxy: Proxy | None = None
        self.dead = False

    def close(self) -> None:
        with self.lock:
            if self.proxy is not None:
                self.proxy._pyroClaimOwnership()
                self.proxy._pyroRelease()
                self.proxy = None


def _same_host(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.strip("[]")) == ipaddress.ip_address(b.strip("[]"))
    except ValueError:
        return a == b


def check_callback(callback_uri: Any, token: Any, peer_host: str | None) -> None:
    """Refuse a callback that is malformed or points anywhere but the subscribing client's own address."""
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN:
        raise InvalidArgument(f"subscribe: token must be text of 1 to {_MAX_TOKEN} characters")
    if not isinstance(callback_uri, str) or len(callback_uri) > _MAX_URI:
        raise InvalidArgument(f"subscribe: the callback must be a PYRO: URI of at most {_MAX_URI} characters")
    try:
        uri = URI(callback_uri)
    except PyroError as err:
        raise InvalidArgument(f"subscribe: callback {callback_uri[:80]!r} is not a Pyro URI ({err})") from None
    if uri.protocol != "PYRO" or uri.sockname or not uri.host:
        raise InvalidArgument(f"subscribe: callback {callback_uri[:80]!r} must be a PYRO:name@host:port URI")
    if peer_host is None or not _same_host(uri.host, peer_host):
        raise AccessDenied(
            f"subscribe: callback address {uri.host} is not the address this subscription came from "
            f"({peer_host}); a daemon calls back only the client that subscribed"
        )


class Publisher:
    """The subscribers of a daemon's services, their deliveries, and the poller they keep running."""

    def __init__(self, limits: SubscriptionLimits | None = None, security: Security | None = None) -> None:
        self.limits = limits or SubscriptionLimits()
        self._security = security  # a TLS daemon calls its subscribers back over TLS too
        self._subscribers: dict[str, _Subscriber] = {}
        self._listened: frozenset[str] = frozenset()  # services with a subscriber: read on every call, lock-free
        self._links: dict[str, _Link] = {}  # callback uri -> the connection its subscribers share
        self._mutex = threading.Lock()
        self._stopped = False
        self.poller = Poller(self.publish, self.services)

    def _recount(self) -> None:
        """After a change of ``_subscribers`` (under the mutex)."""
        self._listened = frozenset(s.service for s in self._subscribers.values())

    def listened(self, service: str) -> bool:
        """Whether anyone subscribes to ``service`` (a state-changing call announces itself only then)."""
        return service in self._listened

    def services(self) -> set[str]:
        """Services someone subscribes to now."""
        with self._mutex:
            return {s.service for s in self._subscribers.values()}

    def subscribe(self, service: str, callback_uri: str, token: str, client_id: str, snapshot: Snapshot) -> None:
        """Add a subscriber whose first delivery is ``snapshot()``: registered before reading, so no change is missed."""
        subscriber = _Subscriber(token, service, callback_uri, client_id)
        with self._mutex:
            if self._stopped:
                raise AccessDenied(f"subscribe: the daemon hosting {service} is stopping")
            old = self._subscribers.pop(token, None)
            mine = sum(1 for s in self._subscribers.values() if s.client_id == client_id)
            if mine >= self.limits.per_client or len(self._subscribers) >= self.limits.per_daemon:
                if old is not None:
                    self._subscribers[token] = old
                limit = ("this client process already holds", self.limits.per_client) \
                    if mine >= self.limits.per_client else ("this daemon already serves", self.limits.per_daemon)
                raise AccessDenied(
                    f"subscribe to {service} refused: {limit[0]} {limit[1]} subscriptions (the limit); "
                    "close the ones you no longer need (Subscription.close(), panel.close())"
                )
            self._subscribers[token] = subscriber
            self._recount()
        if old is not None:
            old.mailbox.close()
        stamp = time.time()  # before reading: a change announced meanwhile is newer and wins
        try:
            values = snapshot()
        except BaseException:
            self.unsubscribe(token)
            raise
        for prop, value in values.items():
            subscriber.put(prop, value, stamp)
        subscriber.thread = threading.Thread(target=self._deliver, args=(subscriber,),
                                             name=f"pyrolab-publish-{service}", daemon=True)
        subscriber.thread.start()
        self.poller.wake()

    def unsubscribe(self, token: str) -> None:
        with self._mutex:
            subscriber = self._subscribers.pop(token, None)
            self._recount()
        if subscriber is not None:
            subscriber.mailbox.close()
            self.poller.wake()

    def has(self, token: str) -> bool:
        with self._mutex:
            return token in self._subscribers

    def count(self) -> int:
        with self._mutex:
            return len(self._subscribers)

    def publish(self, service: str, prop: str, value: Any) -> None:
        """Queue a change for each subscriber of ``service``; never blocks the caller (the instrument's thread)."""
        if service not in self._listened:
            return
        with self._mutex:
            targets = [s for s in self._subscribers.values() if s.service == service]
        if not targets:
            return
        encoded, stamp = pushed(value), time.time()  # encoded once, however many listen
        for subscriber in targets:
            subscriber.put(prop, encoded, stamp)

    def stop(self) -> None:
        with self._mutex:
            self._stopped = True
            subscribers, self._subscribers = list(self._subscribers.values()), {}
            self._recount()
        self.poller.stop()
        for subscriber in subscribers:
            subscriber.mailbox.close()
        deadline = time.monotonic() + 1.0  # one stuck in a delivery ends by its own timeout (a daemon thread)
        for subscriber in subscribers:
            if subscriber.thread is not None:
                subscriber.thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _link(self, uri: str) -> _Link:
        with self._mutex:
            link = self._links.get(uri)
            if link is None:
                link = self._links[uri] = _Link(uri)
            return link

    def _deliver(self, subscriber: _Subscriber) -> None:
        try:
            while (batch := subscriber.mailbox.take()) is not None:
                payload = {prop: {"value": value, "time": stamp} for prop, (value, stamp) in batch.items()}
                if not self._send(self._link(subscriber.uri), subscriber, payload):
                    return
        finally:
            self._forget_link(subscriber.uri)

    def _send(self, link: _Link, subscriber: _Subscriber, payload: dict[str, Any]) -> bool:
        """Deliver one batch; False when the receiver is dead, silent or too slow (its subscribers are dropped)."""
        with link.lock:
            if link.dead:
                self._drop(subscriber)
                return False
            if link.proxy is None:
                link.proxy = new_proxy(link.uri, self.limits.delivery_timeout, self._security, daemon_only=False)
            link.proxy._pyroClaimOwnership()
            try:
                link.proxy.pyrolab_update(subscriber.token, subscriber.service, payload)
            except (CommunicationError, OSError) as err:  # dead, silent or too slow: every subscriber there goes
                log.info("dropping the subscribers at %s: %s", link.uri, err)
                link.dead = True
                link.proxy._pyroRelease()
                link.proxy = None
                with self._mutex:
                    if self._links.get(link.uri) is link:
                        del self._links[link.uri]  # a later subscription from there starts afresh
                    gone = [s for s in self._subscribers.values() if s.uri == link.uri]
                for other in gone:
                    self._drop(other)
                return False
            except Exception:
                log.exception("subscriber %s of %s failed on an update", subscriber.token, subscriber.service)
        return True

    def _forget_link(self, uri: str) -> None:
        """Close the connection to ``uri`` once no subscriber uses it."""
        with self._mutex:
            if any(s.uri == uri for s in self._subscribers.values()):
                return
            link = self._links.pop(uri, None)
        if link is not None:
            link.close()

    def _drop(self, subscriber: _Subscriber) -> None:
        with self._mutex:
            if self._subscribers.get(subscriber.token) is subscriber:
                del self._subscribers[subscriber.token]
                self._recount()
        subscriber.mailbox.close()
        self.poller.wake()
