"""Lab (a nameserver handle) and RemoteService (a thread-safe proxy built from a service's description).

Pyro5 proxies belong to the thread that made them; ``RemoteService`` keeps a
small pool and lends one to whichever thread calls, so widget callbacks and
pollers just work. Calls have a finite default timeout, and a daemon that came
back at a new address is found again through the nameserver, once, on the
failing call.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from Pyro5.errors import CommunicationError, NamingError, PyroError, SerializeError
from Pyro5.errors import TimeoutError as PyroTimeout

from pyrolab_jupyter.core.errors import (
    CallTimeout,
    InvalidArgument,
    LockLost,
    NameserverUnreachable,
    PyroLabError,
    ServiceOffline,
    UnknownService,
)
from pyrolab_jupyter.core.foreign import is_foreign, metadata_description
from pyrolab_jupyter.core.members import (
    RemoteFuture,
    RemoteMethod,
    remote_method,
    remote_property,
    stop_method,
)
from pyrolab_jupyter.core.naming import (
    CLIENT_MEMBERS,
    entry,
    nameserver_addresses,
    nameserver_uri,
)
from pyrolab_jupyter.core.proxies import ProxyPool, forget_lock, hold_lock
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.serialization import decode, encode
from pyrolab_jupyter.core.settings import SETTINGS
from pyrolab_jupyter.core.signatures import help_text
from pyrolab_jupyter.core.subscriptions import Callback, Listener, receiver
from pyrolab_jupyter.core.suggest import close_matches
from pyrolab_jupyter.core.summary import service_html
from pyrolab_jupyter.core.timefmt import ago, until
from pyrolab_jupyter.core.tracebacks import with_remote_traceback

__all__ = [
    "DEFAULT_TIMEOUT", "Lab", "LockHandle", "MemberGroup", "RemoteMethod", "RemoteService", "Subscription",
    "set_call_context", "stop_method",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = SETTINGS.call_timeout
_STOP_TIMEOUT = 5.0  # the stop action after a KeyboardInterrupt gets this long at most
_MIN_ATTEMPT = 0.05  # seconds: less than this left of a deadline is not worth a connection attempt


class Lab:
    """A handle on the lab's nameserver, or on several.

    Parameters
    ----------
    nameserver:
        ``host:port`` or a Pyro URI; else ``$PYROLAB_NAMESERVER``; else ``127.0.0.1:9090``. A list of
        them (or a comma-separated string, in the variable too): what they list is merged (a name two list comes from the one that says it is online; each
        row then has ``sources``, the nameservers listing it, and a ``note`` when they disagree), and
        lookups work while any of them answers.
    timeout:
        Default seconds for lookups and for calls on services connected through this Lab.
    security:
        ``Security`` for a TLS lab: every connection (nameserver and services) is mutual TLS.
    """

    def __init__(self, nameserver: str | Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 security: Security | None = None) -> None:
        if timeout is None or timeout <= 0:
            raise ValueError(f"timeout={timeout!r}: must be a positive number of seconds")
        if nameserver is not None and not isinstance(nameserver, str) and not list(nameserver):
            raise ValueError("Lab([]): give at least one nameserver address, or None for the default")
        self.addresses = nameserver_addresses(nameserver)
        self.address = self.addresses[0]
        self.uri = nameserver_uri(self.address)
        self.timeout = timeout
        self.security = security
        self._pool = ProxyPool(self.uri, timeout, security)
        self._others = [Lab(a, timeout, security) for a in self.addresses[1:]]

    def __repr__(self) -> str:
        return f"Lab({self.address!r})" if not self._others else f"Lab({self.addresses!r})"

    def _ask(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._ask_within(self.timeout, method, *args, **kwargs)

    def _ask_within(self, timeout: float, method: str, *args: Any, **kwargs: Any) -> Any:
        """``_ask`` of the first nameserver, with its own time limit (what is left of a caller's deadline)."""
        proxy = self._pool.acquire()
        proxy._pyroTimeout = timeout
        try:
            result = getattr(proxy, method)(*args, **kwargs)
        except PyroTimeout as err:
            self._pool.discard(proxy)
            raise CallTimeout(f"the nameserver at {self.address} did not answer within {timeout:g} s") from err
        except CommunicationError as err:
            self._pool.discard(proxy)
            tls = ("; in a TLS lab, set $PYROLAB_CERT/$PYROLAB_KEY/$PYROLAB_CA or pass Lab(..., security=)"
                   if self.security is None else
                   f"; connecting as {self.security.identity} over TLS: is it a TLS nameserver of the same lab CA?")
            raise NameserverUnreachable(
                f"no nameserver answers at {self.address} ({err}); start one with `pyrolab nameserver` "
                "or `%pyrolab nameserver start`, or point to it with $PYROLAB_NAMESERVER or Lab('host:port')" + tls
            ) from err
        except BaseException:
            self._pool.release(proxy)
            raise
        self._pool.release(proxy)
        return result

    def _from_each(self, ask: Callable[[Lab], Any]) -> list[tuple[str, Any]]:
        """``(address, answer)`` of every nameserver that answers, in the given order; none answering raises."""
        answers, failures = [], []
        for lab in (self, *self._others):
            try:
                answers.append((lab.address, ask(lab)))
            except (NameserverUnreachable, CallTimeout) as err:
                failures.append(str(err))
        if not answers:
            raise NameserverUnreachable(f"none of the nameservers {', '.join(self.addresses)} answers: "
                                        + "; ".join(failures))
        return answers

    def _services_here(self, timeout: float) -> list[dict[str, Any]]:
        try:
            rows: list[dict[str, Any]] = self._ask_within(timeout, "pyrolab_services")
            return rows
        except AttributeError:  # a plain Pyro5 (or PyroLab) nameserver: it checks nothing, so we cannot say
            listing = self._ask_within(timeout, "list", return_metadata=True)
            return [entry(n, u, m, "unknown", None) for n, (u, m) in sorted(listing.items())
                    if n != "Pyro.NameServer"]

    def _services_within(self, timeout: float) -> list[dict[str, Any]]:
        if not self._others:
            return self._services_here(timeout)
        return merge_listings(self._from_each(lambda lab: lab._services_here(timeout)))

    def services(self) -> list[dict[str, Any]]:
        """Every registered service: name, uri, status, last_seen, class, description, locked_by
        (with several nameservers also ``sources`` and ``note``)."""
        return self._services_within(self.timeout)

    def answers(self) -> bool:
        """Whether a nameserver (any of them) answers at this address (within this Lab's timeout)."""
        try:
            self._from_each(lambda lab: lab._ask("ping"))
        except (NameserverUnreachable, CallTimeout):
            return False
        return True

    def names(self) -> list[str]:
        listed = self._from_each(lambda lab: lab._ask("list")) if self._others else [("", self._ask("list"))]
        return sorted({n for _, names in listed for n in names if n != "Pyro.NameServer"})

    def _lookup_within(self, timeout: float, name: str) -> str:
        if not self._others:
            return str(self._ask_within(timeout, "lookup", name))
        for row in self._services_within(timeout):
            if row["name"] == name:
                return str(row["uri"])
        raise NamingError(f"unknown name: {name}")

    def lookup(self, name: str) -> str:
        """The URI registered for ``name``; ``UnknownService`` names close matches."""
        try:
            return self._lookup_within(self.timeout, name)
        except NamingError:
            known = self.names()
            close = close_matches(name, known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else (
                f"; it knows {', '.join(known[:10])}" if known else "; it has no services registered")
            where = f"the nameserver at {self.address}" if not self._others else (
                f"none of the nameservers {', '.join(self.addresses)}")
            raise UnknownService(f"{where} has no service {name!r}{hint}") from None

    def entry(self, name: str) -> dict[str, Any] | None:
        for row in self.services():
            if row["name"] == name:
                return row
        return None

    def connect(self, name: str, timeout: float | None = None) -> RemoteService:
        """A ``RemoteService`` for ``name``; one lookup and one ``describe()`` round trip."""
        return RemoteService(self, name, self.lookup(name), timeout or self.timeout)

    def snapshot(self, path: str | Path | None = None) -> dict[str, Any]:
        """Every online service's class and properties, read in one round trip per daemon.

        Returns ``{"time", "nameserver", "taken_by", "fingerprint", "services": {name: {"class",
        "version", "locked_by", "properties"}}, "unreachable": {name: reason}}``; ``fingerprint`` is
        a git-like hash of every class's version, equal for two labs running the same code. With
        ``path``, also writes it there as JSON (beside the measurement's data).
        """
        from pyrolab_jupyter.core.snapshot import take_snapshot  # its own module: one concern

        snap = take_snapshot(self)
        if path is not None:
            Path(path).write_text(json.dumps(snap, indent=1, default=str), encoding="utf-8")
        return snap


_STATUS_RANK = {"online": 0, "unknown": 1, "offline": 2}


def merge_listings(listings: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """One row per name from several nameservers' listings: the online one wins (the first nameserver on a
    tie); ``sources`` names who lists it, ``note`` says so when they disagree."""
    by_name: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for address, rows in listings:
        for row in rows:
            by_name.setdefault(str(row["name"]), []).append((address, row))
    merged = []
    for name in sorted(by_name):
        found = by_name[name]
        chosen, best = min(found, key=lambda item: _STATUS_RANK.get(str(item[1].get("status")), 1))
        agree = all((r.get("status"), r.get("uri")) == (best.get("status"), best.get("uri")) for _, r in found)
        note = "" if agree else (
            "listed by " + ", ".join(f"{a} ({r.get('status')} at {r.get('uri')})" for a, r in found)
            + f"; this is {chosen}'s")
        merged.append({**best, "sources": [a for a, _ in found], "note": note})
    return merged


class LockHandle:
    """Returned by ``RemoteService.lock()``; leaving a ``with`` block releases the lock."""

    def __init__(self, service: RemoteService, info: dict[str, Any]) -> None:
        self.service = service
        self.holder: str = info["holder"]
        self.expires: float | None = info["expires"]

    def release(self) -> None:
        self.service.unlock()

    def __enter__(self) -> LockHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<lock on {self.service._pyrolab_name} held by {self.holder}>"


class Subscription:
    """Live updates of a service's properties; ``close()`` ends them.

    The callback gets ``(prop, value, time)``: first every property's current
    value, then each change. ``value`` is an exception object where a read
    failed. Two pseudo-properties arrive too: ``pyrolab.locked_by`` (the lock
    holder or None) and ``pyrolab.call`` (a completed state-changing call:
    ``{"member", "kind", "caller", "outcome", "changes"}``), after which the
    properties that call may have changed are re-read and handed on.
    """

    def __init__(self, service: RemoteService, callback: Callback, host: str) -> None:
        self.service = service
        self.token = uuid.uuid4().hex
        self._host = host
        self._security = service._pyrolab_lab.security
        self.closed = False
        self.listener = Listener(callback, self._reread, service._pyrolab_name, self._keepalive)
        receiver(host, self._security).add(self.token, self.listener)

    def _keepalive(self) -> None:
        """Renew if the daemon no longer serves us (it dropped us, or restarted: the call then finds it again)."""
        if not self.closed and not self.service._pyrolab_call("control", "pyrolab_subscribed", (self.token,), {}):
            if not self.closed:
                self.renew()

    def _reread(self, names: list[str] | None) -> dict[str, Any]:
        values: dict[str, Any] = self.service._pyrolab_call("control", "pyrolab_read", (names,), {})
        return values

    def renew(self) -> None:
        """(Re)subscribe with the daemon, e.g. after it restarted and forgot us; token and callback stay."""
        inbox = receiver(self._host, self._security)
        self.service._pyrolab_call("control", "pyrolab_subscribe", (inbox.uri, self.token), {})

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        receiver(self._host, self._security).remove(self.token)
        self.service._pyrolab_subscriptions.pop(self.token, None)
        try:
            self.service._pyrolab_call("control", "pyrolab_unsubscribe", (self.token,), {})
        except Exception:  # the daemon may be gone; its publisher drops us on the next update
            pass


CallContext = Callable[[], "dict[str, Any] | None"]
_call_context: list[CallContext] = []


def set_call_context(provider: CallContext | None) -> None:
    """Let an upper layer (the kernel) say, with each call, which notebook cell made it; for the audit trail.

    ``provider()`` returns ``{"notebook": path, "execution_count": n}`` or None.
    """
    _call_context[:] = [provider] if provider is not None else []


def _context_annotation() -> bytes | None:
    if not _call_context:
        return None
    try:
        context = _call_context[0]()
    except Exception:  # the audit detail is never worth failing a call
        return None
    return json.dumps(context, default=str).encode()[:1024] if context else None


class MemberGroup:
    """Members served under dotted names (a QCoDeS channel's ``A.temperature``), reached as ``remote.A.temperature``."""

    def __init__(self, service: RemoteService, prefix: str) -> None:
        object.__setattr__(self, "_pyrolab_service", service)
        object.__setattr__(self, "_pyrolab_prefix", prefix)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_pyrolab") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._pyrolab_service, f"{self._pyrolab_prefix}.{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._pyrolab_service, f"{self._pyrolab_prefix}.{name}", value)

    def __dir__(self) -> list[str]:
        head = f"{self._pyrolab_prefix}."
        return sorted({n[len(head):].partition(".")[0] for n in dir(self._pyrolab_service) if n.startswith(head)})

    def __repr__(self) -> str:
        return f"<members {self._pyrolab_prefix}.* of {self._pyrolab_service._pyrolab_name}>"


class RemoteService:
    """A service on a daemon, usable from any thread.

    Exposed methods and properties are attributes. Its own API
    (``describe``, ``lock``, ``unlock``, ``force_unlock``, ``lock_info``,
    ``read_properties``, ``subscribe``, ``disconnect``) is reserved: a daemon
    refuses a service that exposes one of those names. Its state lives under ``_pyrolab_``.
    """

    _pyrolab_lab: Lab
    _pyrolab_name: str
    _pyrolab_pool: ProxyPool
    _pyrolab_methods: dict[str, RemoteMethod]
    _pyrolab_subscriptions: dict[str, Subscription]
    _pyrolab_description: dict[str, Any]
    _pyrolab_stale: bool

    def __init__(self, lab: Lab, name: str, uri: str, timeout: float) -> None:
        set_ = object.__setattr__
        set_(self, "_pyrolab_lab", lab)
        set_(self, "_pyrolab_name", name)
        set_(self, "_pyrolab_pool", ProxyPool(uri, timeout, lab.security))
        set_(self, "_pyrolab_methods", {})
        set_(self, "_pyrolab_subscriptions", {})
        set_(self, "_pyrolab_stale", False)  # a call failed: subscriptions are renewed on the next success
        try:
            description = self._pyrolab_call("control", "describe", (), {})
        except AttributeError:  # not served by pyrolab-jupyter: describe it from Pyro5's own metadata
            description = metadata_description(name, self._pyrolab_call("metadata", "", (), {}))
        set_(self, "_pyrolab_description", description)
        methods = {n: remote_method(self, n, d) for n, d in description.get("methods", {}).items()}
        set_(self, "_pyrolab_methods", methods)
        set_(self, "__doc__", help_text(description))
        # properties become real ones on a class of this object's own, so `remote.power?` shows the
        # property's doc (unit, range) and completion (IPython, jedi) never reads them
        props = {n: remote_property(name, n, d) for n, d in description.get("properties", {}).items()}
        cls = type(type(self).__name__, (type(self),), {**props, "__doc__": self.__doc__,
                                                        "__module__": type(self).__module__})
        set_(self, "__class__", cls)

    # timeouts

    @property
    def _pyrolab_timeout(self) -> float:
        return self._pyrolab_pool.timeout

    @_pyrolab_timeout.setter
    def _pyrolab_timeout(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"timeout={seconds!r}: must be a positive number of seconds")
        self._pyrolab_pool.timeout = seconds

    @property
    def _pyrolab_uri(self) -> str:
        return self._pyrolab_pool.uri

    # the one path every remote operation takes

    def _pyrolab_call(self, kind: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                      timeout: float | None = None) -> Any:
        """One call; its timeout is one deadline for the attempt, the re-lookup and the retry together."""
        __tracebackhide__ = True  # noqa: F841 (IPython hides this frame)
        where = f"{self._pyrolab_name}.{name}"
        pool = self._pyrolab_pool
        note = _context_annotation() if kind != "get" else None
        deadline = time.monotonic() + (pool.timeout if timeout is None else timeout)
        channel = pool.channel
        for attempt in (1, 2):
            proxy = pool.acquire()
            # the first attempt has (all but microseconds of) the whole budget: acquire() set it already,
            # and setting it again costs two syscalls per call
            if attempt == 2 or timeout is not None:
                proxy._pyroTimeout = max(deadline - time.monotonic(), _MIN_ATTEMPT)
            try:
                # Pyro5's own property path passes kwargs=None, which its marshal serializer rejects
                if kind == "get":
                    result = proxy._pyrolab_invoke("__getattr__", (name,), {})
                elif kind == "metadata":
                    proxy._pyroGetMetadata()
                    result = {"methods": sorted(proxy._pyroMethods), "attrs": sorted(proxy._pyroAttrs),
                              "oneway": sorted(proxy._pyroOneway)}
                elif kind == "set":
                    result = proxy._pyrolab_invoke("__setattr__", (name, encode(args[0], channel)), {}, note)
                else:
                    result = proxy._pyrolab_invoke(name, encode(list(args), channel), encode(kwargs, channel), note)
            except PyroTimeout as err:
                pool.discard(proxy)
                self._pyrolab_stale = True
                raise CallTimeout(
                    f"{where} got no answer within {timeout or pool.timeout:g} s (it may still be running on the daemon); "
                    f"raise the timeout with lab.connect({self._pyrolab_name!r}, timeout=...)"
                ) from err
            except SerializeError as err:
                pool.discard(proxy)
                raise InvalidArgument(f"{where}: a value cannot be sent or received ({str(err)[:200]}); "
                                      "use plain values (numbers, str, bytes, lists, dicts) or numpy arrays") from err
            except CommunicationError as err:
                pool.discard(proxy)
                self._pyrolab_stale = True
                if attempt == 1 and self._pyrolab_relookup(deadline):
                    continue
                raise self._pyrolab_offline(err, deadline) from err
            except Exception as err:
                pool.release(proxy)
                if isinstance(err, LockLost):
                    forget_lock(self._pyrolab_name)
                raise with_remote_traceback(err, where) from None
            except BaseException:  # KeyboardInterrupt mid-call: this connection is mid-reply, unusable
                if kind == "call":  # stop first, on another connection (so a lock held keeps one)
                    self._pyrolab_interrupted(name)
                pool.discard(proxy)
                raise
            pool.release(proxy)
            if self._pyrolab_stale and name != "pyrolab_subscribe":
                # a daemon that came back, or that gave up on us while the link was cut, has forgotten them
                self._pyrolab_stale = False
                self._pyrolab_renew_subscriptions()
            return decode(result, channel)
        raise AssertionError("unreachable")

    @property
    def _pyrolab_stop_method(self) -> str | None:
        return stop_method(self._pyrolab_description)

    def _pyrolab_stop(self) -> Any:
        """Call the service's stop action with a short timeout (``AttributeError`` if it has none)."""
        stop = self._pyrolab_stop_method
        if stop is None:
            raise AttributeError(f"{self._pyrolab_name} declares no stop action (expose(stop=True))")
        return self._pyrolab_call("call", stop, (), {}, timeout=min(self._pyrolab_timeout, _STOP_TIMEOUT))

    def _pyrolab_interrupted(self, name: str) -> None:
        """A call was interrupted (Ctrl-C, the stop button): invoke the stop action, say so, never raise.

        Either way another connection is open before the interrupted one closes,
        so a lock this process holds does not end with it.
        """
        stop = self._pyrolab_stop_method
        if stop is None or stop == name:
            try:
                spare = self._pyrolab_pool.acquire()
                spare._pyroBind()
                self._pyrolab_pool.release(spare)
            except Exception as err:
                log.info("no spare connection to %s: %s", self._pyrolab_name, err)
            return
        try:
            self._pyrolab_stop()
        except Exception as err:
            log.warning("%s interrupted; its stop action %s() failed: %s", name, stop, err)
        else:
            log.warning("%s.%s interrupted: called %s() on the service", self._pyrolab_name, name, stop)

    def _pyrolab_submit(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        stop = self._pyrolab_stop if self._pyrolab_stop_method not in (None, name) else None
        future = RemoteFuture(stop)
        thread = threading.Thread(target=future.run, name=f"pyrolab-submit-{self._pyrolab_name}.{name}", daemon=True,
                                  args=(lambda: self._pyrolab_call("call", name, args, kwargs),))
        thread.start()
        return future

    def _pyrolab_renew_subscriptions(self) -> None:
        for subscription in list(self._pyrolab_subscriptions.values()):
            try:
                subscription.renew()
            except Exception as err:  # the caller's own call succeeded; a stale panel is the lesser harm
                log.warning("could not renew a subscription to %s: %s", self._pyrolab_name, err)

    def _pyrolab_relookup(self, deadline: float) -> bool:
        """Ask the nameserver where the service is now (within the call's deadline); True if worth one more try."""
        left = deadline - time.monotonic()
        if left < _MIN_ATTEMPT * 2:
            return False
        try:
            uri = self._pyrolab_lab._lookup_within(left / 2, self._pyrolab_name)
        except (PyroError, OSError, NameserverUnreachable, UnknownService, CallTimeout):
            return False
        self._pyrolab_pool.reset(uri)
        return True

    def _pyrolab_offline(self, err: Exception, deadline: float) -> ServiceOffline:
        seen = ""
        left = deadline - time.monotonic()
        try:
            listing = self._pyrolab_lab._services_within(left) if left > _MIN_ATTEMPT else []
            row = next((r for r in listing if r["name"] == self._pyrolab_name), None)
        except Exception:
            row = None
        if row and row.get("last_seen"):
            seen = f", last seen {time.strftime('%H:%M:%S', time.localtime(float(row['last_seen'])))}"
        return ServiceOffline(
            f"{self._pyrolab_name} does not answer at {self._pyrolab_pool.uri} ({err}{seen}); "
            "check that its daemon runs (`pyrolab ls` shows its status); calls reconnect once it is back"
        )

    # attribute access mirrors the service

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_pyrolab") or name.startswith("__"):
            raise AttributeError(name)
        methods = self._pyrolab_methods
        if name in methods:
            return methods[name]
        known = list(methods) + list(self._pyrolab_description.get("properties", {}))
        if any(k.startswith(f"{name}.") for k in known):
            return MemberGroup(self, name)
        close = close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AttributeError(f"{self._pyrolab_name} has no exposed member {name!r}{hint}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_pyrolab") or name in self._pyrolab_description.get("properties", {}):
            object.__setattr__(self, name, value)  # exposed properties are real properties of our class
            return
        raise AttributeError(f"{self._pyrolab_name} has no exposed property {name!r} to set")

    def __dir__(self) -> list[str]:
        desc = self._pyrolab_description
        return sorted(set(desc.get("methods", {})) | set(desc.get("properties", {})) | CLIENT_MEMBERS)

    def __repr__(self) -> str:
        return f"<RemoteService {self._pyrolab_name} ({self._pyrolab_description.get('class')}) at {self._pyrolab_uri}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """An HTML summary; in a kernel with ``%load_ext pyrolab_jupyter`` the magics' formatter shows the panel."""
        return {"text/plain": repr(self),
                "text/html": service_html(self._pyrolab_name, self.describe())}

    # the service's own API

    def describe(self) -> dict[str, Any]:
        """The service's description as a plain dict (JSON Schema per member)."""
        if is_foreign(self._pyrolab_description):
            return dict(self._pyrolab_description)
        description: dict[str, Any] = self._pyrolab_call("control", "describe", (), {})
        return description

    def read_properties(self, *names: str) -> dict[str, Any]:
        """Several property values in one round trip (all of them when none is named)."""
        if is_foreign(self._pyrolab_description):
            return self._pyrolab_read_each(list(names) or list(self._pyrolab_description["properties"]))
        values: dict[str, Any] = self._pyrolab_call("control", "pyrolab_read", (list(names) or None,), {})
        return values

    def _pyrolab_read_each(self, names: list[str]) -> dict[str, Any]:
        """``read_properties`` for an object without ``pyrolab_read``: one round trip per value."""
        values: dict[str, Any] = {}
        for prop in names:
            try:
                values[prop] = self._pyrolab_call("get", prop, (), {})
            except (ServiceOffline, CallTimeout):
                raise
            except Exception as err:  # per value, as the daemon's pyrolab_read reports it
                values[prop] = err
        values["__time__"] = time.time()
        return values

    def _pyrolab_native(self, what: str) -> None:
        if is_foreign(self._pyrolab_description):
            raise PyroLabError(f"{self._pyrolab_name} is a plain Pyro5 object, not served by pyrolab-jupyter: "
                               f"it cannot {what}; serve it with start_daemon() or `pyrolab daemon` to get that")

    def lock(self, lease: float | None = SETTINGS.lock_lease) -> LockHandle:
        """Lock the service for this process, now or ``ServiceLocked``; renews a lock held."""
        self._pyrolab_native("be locked")
        info = self._pyrolab_call("control", "pyrolab_lock", (lease,), {})
        hold_lock(self._pyrolab_name, info["expires"])
        return LockHandle(self, info)

    def unlock(self) -> bool:
        """Release this process's lock; False if none was held."""
        forget_lock(self._pyrolab_name)
        return bool(self._pyrolab_call("control", "pyrolab_unlock", (), {}))

    def force_unlock(self) -> str | None:
        """Break anyone's lock (emergencies); returns the former holder."""
        holder: str | None = self._pyrolab_call("control", "pyrolab_force_unlock", (), {})
        return holder

    def lock_info(self) -> dict[str, Any] | None:
        """``{"holder", "since", "expires", "mine", "since_text", "expires_text"}`` or None when unlocked.

        ``since``/``expires`` are epoch seconds (``expires`` None: no lease end);
        the ``_text`` keys say the same for people: ``"3 s ago"``, ``"until 14:02"``.
        """
        info: dict[str, Any] | None = self._pyrolab_call("control", "pyrolab_lock_info", (), {})
        if info is not None:
            info["since_text"] = ago(info.get("since"))
            info["expires_text"] = until(info.get("expires"))
        return info

    def history(self, n: int = 50) -> list[dict[str, Any]]:
        """The service's last ``n`` state changes from its daemon's audit trail, newest last.

        Each is a dict with ``time``, ``who``, ``service``, ``member``, ``kind`` (call, set, lock,
        unlock, force_unlock), ``args``, ``outcome`` (``"ok"`` or the error's type) and, for calls
        from a notebook, ``notebook`` and ``execution_count``.
        """
        records: list[dict[str, Any]] = self._pyrolab_call("control", "pyrolab_history", (n,), {})
        return records

    def soft_limits(self) -> dict[str, list[float | None]]:
        """The soft limits the daemon enforces on this service, by target (``"set_power.mw"``)."""
        limits: dict[str, list[float | None]] = self._pyrolab_call("control", "pyrolab_soft_limits", (), {})
        return limits

    def set_soft_limit(self, target: str, low: float | None, high: float | None) -> None:
        """Change a soft limit on the daemon (within the class's range); an admin's act once TLS has roles."""
        self._pyrolab_call("control", "pyrolab_set_soft_limit", (target, low, high), {})
        object.__setattr__(self, "_pyrolab_description", self.describe())

    def subscribe(self, callback: Callback) -> Subscription:
        """Call ``callback(prop, value, time)`` with every property's current value, then with each change.

        Callbacks run on the subscription's own thread, one at a time; a
        change made between a read and this call is never missed.
        """
        self._pyrolab_native("push changes (poll it instead)")
        host = self._pyrolab_pool.local_host
        subscription = Subscription(self, callback, host)
        try:
            subscription.renew()
        except BaseException:
            receiver(host, self._pyrolab_lab.security).remove(subscription.token)
            raise
        self._pyrolab_subscriptions[subscription.token] = subscription
        return subscription

    def disconnect(self) -> None:
        """Close the connections this object holds (a lock it holds ends with the last one)."""
        self._pyrolab_pool.reset(self._pyrolab_pool.uri)
