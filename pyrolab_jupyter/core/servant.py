"""The object Pyro5 actually serves for a service: validation, locks and serialisation around it.

For each hosted service a class is generated whose exposed members mirror the
service's (so a plain ``Pyro5.api.Proxy`` works as well as ``RemoteService``),
plus control members under the reserved ``pyrolab_`` prefix. Every call is
checked against the lock and validated before the service's own code runs.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from Pyro5.callcontext import current_context

from pyrolab_jupyter.core.audit import AuditLog, call_context
from pyrolab_jupyter.core.errors import (
    AccessDenied,
    InvalidArgument,
    LockLost,
    PyroLabError,
    RemoteError,
    ServiceBusy,
)
from pyrolab_jupyter.core.locks import ClientInfo, LockTable
from pyrolab_jupyter.core.naming import CLIENT_MEMBERS
from pyrolab_jupyter.core.schema import plain
from pyrolab_jupyter.core.serialization import decode, encode
from pyrolab_jupyter.core.service import Service, schema_of
from pyrolab_jupyter.core.snapshot import class_version
from pyrolab_jupyter.core.wire import HOLDS_LOCK, WAIT

if TYPE_CHECKING:
    from pyrolab_jupyter.core.schema import ServiceSchema

__all__ = ["CONTROL_MEMBERS", "RESERVED_NAMES", "Host", "make_servant"]


class Host(Protocol):
    """What a servant needs from the daemon hosting it."""

    locks: LockTable
    audit: AuditLog
    objectsById: dict[str, Any]  # noqa: N815 (Pyro5's name): every object the daemon serves

    def current_client(self) -> ClientInfo: ...
    def locks_changed(self, service: str) -> None: ...
    def publish(self, service: str, prop: str, value: Any) -> None: ...
    def subscribe(self, service: str, callback_uri: str, token: str) -> None: ...
    def unsubscribe(self, token: str) -> None: ...


CONTROL_MEMBERS = frozenset({
    "describe", "pyrolab_lock", "pyrolab_unlock", "pyrolab_force_unlock", "pyrolab_lock_info",
    "pyrolab_read", "pyrolab_subscribe", "pyrolab_unsubscribe", "pyrolab_history",
    "pyrolab_snapshot",
})
RESERVED_NAMES = CONTROL_MEMBERS | CLIENT_MEMBERS


def _exposed(func: Callable[..., Any]) -> Callable[..., Any]:
    func._pyroExposed = True  # type: ignore[attr-defined]
    return func


DEFAULT_WAIT = 10.0  # how long a caller that does not say (a plain Pyro5 client) waits for a busy service
_MAX_WAITERS = 8  # callers queued on one busy service; more are told ServiceBusy at once
_MAX_CONCURRENT = 32  # calls a thread-safe service runs at once (the daemon has 128 workers)


def _note(name: str) -> str:
    raw = (current_context.annotations or {}).get(name)
    return bytes(raw).decode("ascii", "replace") if raw is not None else ""


def _caller_wait() -> float:
    """A bit less than the caller's own timeout, so ``ServiceBusy`` arrives before the caller gives up."""
    try:
        timeout = float(_note(WAIT) or DEFAULT_WAIT)
    except ValueError:
        timeout = DEFAULT_WAIT
    timeout = DEFAULT_WAIT if math.isnan(timeout) else min(max(timeout, 0.0), 3600.0)
    return timeout * 0.8


class _Gate:
    """How many calls a service runs at once: one if it is not thread-safe, else ``_MAX_CONCURRENT``
    (so even a thread-safe service whose calls hang cannot take every worker of its daemon).
    Knows the oldest call in progress, to name it in ``ServiceBusy``."""

    def __init__(self, service: str, thread_safe: bool) -> None:
        self._service = service
        self._slots = _MAX_CONCURRENT if thread_safe else 1
        self._lock: threading.Semaphore | threading.RLock = (
            threading.BoundedSemaphore(self._slots) if thread_safe else threading.RLock())
        self._mutex = threading.Lock()
        self._waiters = 0
        self._running: dict[int, tuple[str, str, float]] = {}  # thread -> member, caller, since (monotonic)

    @contextlib.contextmanager
    def enter(self, member: str, caller: Callable[[], str]) -> Any:
        if not self._lock.acquire(blocking=False):
            self._wait(member)
        me = threading.get_ident()
        outer = self._running.get(me)
        if outer is None:
            self._running[me] = (member, caller(), time.monotonic())
        try:
            yield
        finally:
            if outer is None:
                self._running.pop(me, None)
            self._lock.release()

    def _wait(self, member: str) -> None:
        wait = _caller_wait()
        with self._mutex:
            crowded = self._waiters >= _MAX_WAITERS
            if not crowded:
                self._waiters += 1
        try:
            if not crowded and self._lock.acquire(timeout=wait):
                return
        finally:
            if not crowded:
                with self._mutex:
                    self._waiters -= 1
        running = sorted(list(self._running.values()), key=lambda r: r[2])
        oldest = (f"{running[0][0]} (called by {running[0][1]}, running for {time.monotonic() - running[0][2]:.1f} s)"
                  if running else "another call")
        doing = oldest if self._slots == 1 else f"{self._slots} calls, the oldest {oldest}"
        waited = f"{self._waiters} callers already wait" if crowded else f"waited {wait:.1f} s"
        at_once = "one call" if self._slots == 1 else f"{self._slots} calls"
        raise ServiceBusy(f"{self._service}.{member}: the service is busy with {doing}; {waited}. It runs "
                          f"{at_once} at a time; try again later or give the call a longer timeout")


def _translate(err: Exception) -> Exception:
    """Errors the client cannot rebuild become ``RemoteError`` carrying type and traceback."""
    if isinstance(err, PyroLabError) or type(err).__module__ == "builtins":
        return err
    kind = type(err)
    remote = RemoteError(f"{kind.__qualname__}: {err}")
    remote.remote_type = f"{kind.__module__}.{kind.__qualname__}"
    remote.remote_traceback = "".join(traceback.format_exception(err))
    return remote


class _ServantBase:
    """Behaviour shared by every generated servant class."""

    def __init__(self, name: str, service: Service, host: Host, description: str | None) -> None:
        self._name = name
        self._service = service
        self._host = host
        self._schema: ServiceSchema = schema_of(type(service))
        self._gate = _Gate(name, service.thread_safe)
        self._description = {**self._schema.description, "name": name}
        if description:
            self._description["description"] = description

    def _check_lock(self) -> ClientInfo:
        """``ServiceLocked`` if another process holds the lock; ``LockLost`` if the caller's own is gone."""
        client = self._host.current_client()
        self._host.locks.check(self._name, client)
        if _note(HOLDS_LOCK):
            lease = self._host.locks.holder(self._name)
            if lease is None or lease.holder.client_id != client.client_id:
                raise LockLost(f"your lock on {self._name} is gone (force-unlocked, or its daemon restarted and "
                               "could not keep it); nothing was changed: lock() again, check the state, retry")
        return client

    def _run(self, writes: bool, action: Callable[..., Any], *args: Any, member: str = "", **kwargs: Any) -> Any:
        """Run service code under the lock check and the service's gate; translate its errors."""
        if writes:
            self._check_lock()
        with self._gate.enter(member or getattr(action, "__name__", "a call"), self._caller):
            try:
                return action(*args, **kwargs)
            except PyroLabError:
                raise
            except Exception as err:
                err._pyrolab_raised_by_service = True  # type: ignore[attr-defined]
                translated = _translate(err)
                if translated is err:
                    raise
                raise translated from err

    def _caller(self) -> str:
        return self._host.current_client().identity

    def _decoded(self, value: Any) -> Any:
        try:
            return decode(value)
        except Exception as err:  # noqa: BLE001 - a hand-made or corrupted tagged value, whatever it breaks
            raise InvalidArgument(f"{self._name}: a value could not be decoded ({type(err).__name__}: "
                                  f"{str(err)[:80]}); send plain values or numpy arrays") from None

    @contextlib.contextmanager
    def _audited(self, kind: str, member: str, args: Any = ()) -> Any:
        """Record a state-changing request in the daemon's audit log, with its outcome."""
        client = self._host.current_client()
        outcome, error = "ok", None
        try:
            yield
        except BaseException as err:
            outcome, error = type(err).__name__, str(err)
            raise
        finally:
            self._host.audit.record(client.identity, self._name, member, kind, args, outcome, error,
                                    call_context(current_context.annotations))

    def _invoke(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = self._schema.methods[method]
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise InvalidArgument(f"{self._name}.{method}(): keyword arguments must be a dict with str keys")
        if call.readonly:
            args, kwargs = call.validate(tuple(self._decoded(list(args))), self._decoded(kwargs))
            return encode(plain(self._run(False, getattr(self._service, method), *args, member=f"{method}()",
                                          **kwargs)))
        raw_args, raw_kwargs = self._decoded(list(args)), self._decoded(kwargs)
        with self._audited("call", method, [*raw_args, raw_kwargs] if raw_kwargs else raw_args):
            args, kwargs = call.validate(tuple(raw_args), raw_kwargs)
            result = self._run(True, getattr(self._service, method), *args, member=f"{method}()", **kwargs)
        return encode(plain(result))

    def _get(self, prop: str) -> Any:
        return encode(plain(self._run(False, getattr, self._service, prop, member=f"reading {prop}")))

    def _set(self, prop: str, value: Any) -> None:
        value = self._decoded(value)
        with self._audited("set", prop, [value]):
            value = self._schema.properties[prop].validate(value)
            current = self._run(True, self._assign, prop, value, member=f"setting {prop}")
        self._host.publish(self._name, prop, current)

    def _assign(self, prop: str, value: Any) -> Any:
        setattr(self._service, prop, value)
        return plain(getattr(self._service, prop))

    # control members, reachable remotely under the reserved prefix

    @_exposed
    def describe(self) -> dict[str, Any]:
        """The service's description (JSON Schema per member), a plain dict."""
        lease = self._host.locks.holder(self._name)
        return {**self._description, "locked_by": lease.holder.identity if lease else None}

    @_exposed
    def pyrolab_lock(self, lease: float | None = 60.0) -> dict[str, Any]:
        with self._audited("lock", "lock", [lease]):
            if lease is not None and (isinstance(lease, bool) or not isinstance(lease, (int, float))
                                      or not 0 < lease < 1e9):
                raise InvalidArgument(f"lock(lease={str(lease)[:40]!r}): a lease is a positive number of seconds "
                                      "or None")
            held = self._host.locks.acquire(self._name, self._host.current_client(), lease)
        self._host.locks_changed(self._name)
        return {"holder": held.holder.identity, "since": held.since, "expires": held.expires}

    @_exposed
    def pyrolab_unlock(self) -> bool:
        with self._audited("unlock", "unlock"):
            released = self._host.locks.release(self._name, self._host.current_client())
        if released:
            self._host.locks_changed(self._name)
        return released

    @_exposed
    def pyrolab_force_unlock(self) -> str | None:
        """Break anyone's lock; under TLS only an ``admin`` certificate may."""
        with self._audited("force_unlock", "force_unlock"):
            client = self._host.current_client()
            if client.verified and client.role != "admin":
                raise AccessDenied(f"force_unlock of {self._name} refused: {client.identity} has role "
                                   f"{client.role or 'none'}; only an admin certificate (OU=admin) may break a lock")
            lease = self._host.locks.force_release(self._name)
        if lease is None:
            return None
        self._host.locks_changed(self._name)
        return lease.holder.identity

    @_exposed
    def pyrolab_history(self, n: int = 50) -> list[dict[str, Any]]:
        """The last ``n`` audit records of this service, oldest first."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InvalidArgument(f"history(n={n!r}): n must be a non-negative whole number")
        return self._host.audit.history(self._name, n)

    @_exposed
    def pyrolab_lock_info(self) -> dict[str, Any] | None:
        lease = self._host.locks.holder(self._name)
        if lease is None:
            return None
        mine = lease.holder.client_id == self._host.current_client().client_id
        return {"holder": lease.holder.identity, "since": lease.since, "expires": lease.expires, "mine": mine}

    @_exposed
    def pyrolab_read(self, names: list[str] | None = None) -> dict[str, Any]:
        """Several property values in one round trip; a failing one maps to its error text."""
        values: dict[str, Any] = {}
        if names is not None and not isinstance(names, list):
            raise InvalidArgument(f"read_properties(): names must be a list of property names, not "
                                  f"{type(names).__name__}")
        for prop in self._schema.properties if names is None else names:
            if not isinstance(prop, str) or prop not in self._schema.properties:
                raise InvalidArgument(f"pyrolab_read(): {str(prop)[:80]!r} is not a property of {self._name}")
            try:
                values[prop] = self._get(prop)
            except Exception as err:  # reported per value so one bad sensor spoils no panel
                values[prop] = {"__pyrolab__": "error", "type": type(err).__name__, "message": str(err)}
        values["__time__"] = time.time()
        return values

    @_exposed
    def pyrolab_snapshot(self) -> dict[str, Any]:
        """Class, version, lock holder and properties of every service of this daemon: one round trip."""
        states: dict[str, Any] = {}
        for servant in list(self._host.objectsById.values()):
            if isinstance(servant, _ServantBase):
                lease = servant._host.locks.holder(servant._name)
                states[servant._name] = {
                    "class": servant._description.get("class"),
                    "version": class_version(type(servant._service)),
                    "locked_by": lease.holder.identity if lease else None,
                    "properties": servant.pyrolab_read(),
                }
        return states

    @_exposed
    def pyrolab_subscribe(self, callback_uri: str, token: str) -> None:
        if not isinstance(callback_uri, str) or not isinstance(token, str):
            raise InvalidArgument("subscribe: the callback URI and the token must be strings")
        self._host.subscribe(self._name, callback_uri, token)

    @_exposed
    def pyrolab_unsubscribe(self, token: str) -> None:
        self._host.unsubscribe(token)


def _method(name: str) -> Callable[..., Any]:
    def call(self: _ServantBase, *args: Any, **kwargs: Any) -> Any:
        return self._invoke(name, args, kwargs)

    call.__name__ = name
    return _exposed(call)


def _property(name: str, writable: bool) -> property:
    def fget(self: _ServantBase) -> Any:
        return self._get(name)

    def fset(self: _ServantBase, value: Any) -> None:
        self._set(name, value)

    return property(_exposed(fget), fset if writable else None)


def make_servant(name: str, service: Service, host: Host, description: str | None = None) -> _ServantBase:
    """Build the Pyro5-facing object for ``service`` registered as ``name``."""
    schema = schema_of(type(service))
    clash = RESERVED_NAMES.intersection(schema.methods).union(RESERVED_NAMES.intersection(schema.properties))
    if clash:
        raise ValueError(f"{type(service).__qualname__} exposes {', '.join(sorted(clash))}, reserved for "
                         "the client's own API (RemoteService); rename them")
    members: dict[str, Any] = {n: _method(n) for n in schema.methods}
    members.update({n: _property(n, p.writable) for n, p in schema.properties.items()})
    cls = type(f"{type(service).__name__}Servant", (_ServantBase,), members)
    servant: _ServantBase = cls(name, service, host, description)
    return servant
