"""The object Pyro5 actually serves for a service: validation, locks and serialisation around it.

For each hosted service a class is generated whose exposed members mirror the
service's (so a plain ``Pyro5.api.Proxy`` works as well as ``RemoteService``),
plus control members under the reserved ``pyrolab_`` prefix. Every call is
checked against the lock and validated before the service's own code runs.

Every completed state-changing call (a method not marked ``readonly``, a
property set) is announced to subscribers with its caller, outcome and the
properties it may have changed. The stop action (``expose(stop=True)``) skips
the lock check and the one-call-at-a-time mutex: it must work while another
client's call runs, so it must be safe to call then.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from Pyro5.callcontext import current_context

from pyrolab_jupyter.core.errors import InvalidArgument, PyroLabError, RemoteError
from pyrolab_jupyter.core.locks import ClientInfo, LockTable
from pyrolab_jupyter.core.naming import CLIENT_MEMBERS
from pyrolab_jupyter.core.poller import SKIP
from pyrolab_jupyter.core.publish import CALL_PROPERTY, LOCK_PROPERTY, Snapshot, check_callback
from pyrolab_jupyter.core.schema import plain
from pyrolab_jupyter.core.serialization import decode, encode
from pyrolab_jupyter.core.service import Service, schema_of

if TYPE_CHECKING:
    from pyrolab_jupyter.core.schema import ServiceSchema

__all__ = ["CONTROL_MEMBERS", "RESERVED_NAMES", "Host", "make_servant"]


class Host(Protocol):
    """What a servant needs from the daemon hosting it."""

    locks: LockTable

    def current_client(self) -> ClientInfo: ...
    def locks_changed(self, service: str) -> None: ...
    def publish(self, service: str, prop: str, value: Any) -> None: ...
    def subscribe(self, service: str, callback_uri: str, token: str, client_id: str, snapshot: Snapshot) -> None: ...
    def unsubscribe(self, token: str) -> None: ...
    def subscribed(self, token: str) -> bool: ...


CONTROL_MEMBERS = frozenset({
    "describe", "pyrolab_lock", "pyrolab_unlock", "pyrolab_force_unlock", "pyrolab_lock_info",
    "pyrolab_read", "pyrolab_subscribe", "pyrolab_unsubscribe", "pyrolab_subscribed",
})
RESERVED_NAMES = CONTROL_MEMBERS | CLIENT_MEMBERS


def _exposed(func: Callable[..., Any]) -> Callable[..., Any]:
    func._pyroExposed = True  # type: ignore[attr-defined]
    return func


_OUTCOME_TEXT = 200  # an announced error message is cut to this


def _outcome(err: BaseException | None) -> str:
    return "ok" if err is None else f"{type(err).__name__}: {err}"[:_OUTCOME_TEXT]


def _translated(action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run service code; an error the client could not rebuild leaves as ``RemoteError``."""
    try:
        return action(*args, **kwargs)
    except PyroLabError:
        raise
    except Exception as err:
        translated = _translate(err)
        if translated is err:
            raise
        raise translated from err


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
        self._mutex = contextlib.nullcontext() if service.thread_safe else threading.RLock()
        self._description = {**self._schema.description, "name": name}
        if description:
            self._description["description"] = description

    def _run(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run service code under the service's mutex (one call at a time unless thread-safe)."""
        with self._mutex:
            return _translated(action, *args, **kwargs)

    def _invoke(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = self._schema.methods[method]
        args, kwargs = call.validate(tuple(decode(list(args))), decode(kwargs))
        action = getattr(self._service, method)
        if call.readonly:
            return encode(plain(self._run(action, *args, **kwargs)))
        if not call.stop:
            self._host.locks.check(self._name, self._host.current_client())  # a refusal changed nothing
        try:  # the stop action skips the mutex: it must reach a service busy with another's call
            result = _translated(action, *args, **kwargs) if call.stop else self._run(action, *args, **kwargs)
        except BaseException as err:
            self._announce(method, "call", call.changes, err)
            raise
        self._announce(method, "call", call.changes, None)
        return encode(plain(result))

    def _announce(self, member: str, kind: str, changes: tuple[str, ...] | None, err: BaseException | None) -> None:
        """Tell subscribers a state-changing call completed, so they re-read what it may have changed."""
        self._host.publish(self._name, CALL_PROPERTY, {
            "member": member, "kind": kind, "caller": self._host.current_client().identity,
            "outcome": _outcome(err), "changes": None if changes is None else list(changes),
        })

    def _get(self, prop: str) -> Any:
        return encode(plain(self._run(getattr, self._service, prop)))

    def _set(self, prop: str, value: Any) -> None:
        value = self._schema.properties[prop].validate(decode(value))
        self._host.locks.check(self._name, self._host.current_client())
        changes = self._schema.properties[prop].changes
        try:
            current = self._run(self._assign, prop, value)
        except BaseException as err:
            self._announce(prop, "set", changes, err)
            raise
        self._host.publish(self._name, prop, current)
        self._announce(prop, "set", tuple(c for c in changes if c != prop) if changes is not None else None, None)

    def _read_or_error(self, prop: str) -> Any:
        """The encoded value, or the encoded error: one bad sensor spoils no panel."""
        try:
            return self._get(prop)
        except Exception as err:
            return encode(err)

    def snapshot(self) -> dict[str, Any]:
        """Every property's current value (encoded, errors as values) and the lock holder."""
        values = {prop: self._read_or_error(prop) for prop in self._schema.properties}
        lease = self._host.locks.holder(self._name)
        values[LOCK_PROPERTY] = lease.holder.identity if lease else None
        return values

    @property
    def poll_periods(self) -> dict[str, float]:
        return {n: p.poll for n, p in self._schema.properties.items() if p.poll is not None}

    def poll_read(self, prop: str) -> Any:
        """A polled value; ``SKIP`` when a non-thread-safe service is busy for longer than a poll period."""
        period = self._schema.properties[prop].poll or 0.0
        mutex = self._mutex
        if isinstance(mutex, contextlib.nullcontext):
            acquired = True
        else:
            acquired = mutex.acquire(timeout=period)
        if not acquired:
            return SKIP
        try:
            return plain(getattr(self._service, prop))
        except Exception as err:
            return _translate(err)
        finally:
            if not isinstance(mutex, contextlib.nullcontext):
                mutex.release()

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
        held = self._host.locks.acquire(self._name, self._host.current_client(), lease)
        self._host.locks_changed(self._name)
        return {"holder": held.holder.identity, "since": held.since, "expires": held.expires}

    @_exposed
    def pyrolab_unlock(self) -> bool:
        released = self._host.locks.release(self._name, self._host.current_client())
        if released:
            self._host.locks_changed(self._name)
        return released

    @_exposed
    def pyrolab_force_unlock(self) -> str | None:
        lease = self._host.locks.force_release(self._name)
        if lease is None:
            return None
        self._host.locks_changed(self._name)
        return lease.holder.identity

    @_exposed
    def pyrolab_lock_info(self) -> dict[str, Any] | None:
        lease = self._host.locks.holder(self._name)
        if lease is None:
            return None
        mine = lease.holder.client_id == self._host.current_client().client_id
        return {"holder": lease.holder.identity, "since": lease.since, "expires": lease.expires, "mine": mine}

    @_exposed
    def pyrolab_read(self, names: list[str] | None = None) -> dict[str, Any]:
        """Several property values in one round trip; a failing one comes back as its error, beside the others."""
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise InvalidArgument("pyrolab_read(): names must be a list of property names")
        values: dict[str, Any] = {}
        for prop in self._schema.properties if names is None else dict.fromkeys(names):  # each read once
            if prop not in self._schema.properties:
                raise InvalidArgument(f"pyrolab_read(): {prop[:80]!r} is not a property of {self._name}")
            values[prop] = self._read_or_error(prop)
        values["__time__"] = time.time()
        return values

    @_exposed
    def pyrolab_subscribe(self, callback_uri: str, token: str) -> None:
        """Push changes to ``callback_uri`` (this caller's own address only), the current values first."""
        peer = current_context.client_sock_addr
        check_callback(callback_uri, token, str(peer[0]) if peer else None)
        client = self._host.current_client()
        self._host.subscribe(self._name, callback_uri, token, client.client_id, self.snapshot)

    @_exposed
    def pyrolab_unsubscribe(self, token: str) -> None:
        self._host.unsubscribe(token)

    @_exposed
    def pyrolab_subscribed(self, token: str) -> bool:
        """Whether the subscription ``token`` is still served (the client renews it if not)."""
        return isinstance(token, str) and self._host.subscribed(token)


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
