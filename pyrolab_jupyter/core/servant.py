"""The object Pyro5 actually serves for a service: validation, locks and serialisation around it.

For each hosted service a class is generated whose exposed members mirror the
service's (so a plain ``Pyro5.api.Proxy`` works as well as ``RemoteService``),
plus control members under the reserved ``pyrolab_`` prefix. Every call is
checked against the lock and validated before the service's own code runs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pyrolab_jupyter.core.errors import AccessDenied, InvalidArgument, PyroLabError, RemoteError
from pyrolab_jupyter.core.guard import Guard, bind_arguments
from pyrolab_jupyter.core.locks import ClientInfo, LockTable
from pyrolab_jupyter.core.naming import CLIENT_MEMBERS
from pyrolab_jupyter.core.safety import rules_of
from pyrolab_jupyter.core.schema import plain
from pyrolab_jupyter.core.serialization import decode, encode
from pyrolab_jupyter.core.service import Service, schema_of

if TYPE_CHECKING:
    from pyrolab_jupyter.core.schema import ServiceSchema

__all__ = ["CONTROL_MEMBERS", "RESERVED_NAMES", "Host", "make_servant"]

log = logging.getLogger(__name__)


class Host(Protocol):
    """What a servant needs from the daemon hosting it."""

    locks: LockTable

    def current_client(self) -> ClientInfo: ...
    def locks_changed(self, service: str) -> None: ...
    def publish(self, service: str, prop: str, value: Any) -> None: ...
    def subscribe(self, service: str, callback_uri: str, token: str) -> None: ...
    def unsubscribe(self, token: str) -> None: ...
    def read_remote(self, service: str, prop: str) -> Any: ...


CONTROL_MEMBERS = frozenset({
    "describe", "pyrolab_lock", "pyrolab_unlock", "pyrolab_force_unlock", "pyrolab_lock_info",
    "pyrolab_read", "pyrolab_subscribe", "pyrolab_unsubscribe", "pyrolab_soft_limits",
    "pyrolab_set_soft_limit",
})
RESERVED_NAMES = CONTROL_MEMBERS | CLIENT_MEMBERS


def _exposed(func: Callable[..., Any]) -> Callable[..., Any]:
    func._pyroExposed = True  # type: ignore[attr-defined]
    return func


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
        self._text = description
        self._guard = Guard(name, self._schema, rules_of(service), self._read_for_rules,
                            lambda prop, value: host.publish(name, prop, value))

    @property
    def _description(self) -> dict[str, Any]:
        """This instance's description: the class's, with its safety rules' narrowed ranges."""
        described = {**self._guard.description, "name": self._name}
        if self._text:
            described["description"] = self._text
        return described

    def _run(self, writes: bool, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run service code under the lock check and the service's mutex; translate its errors."""
        if writes:
            self._host.locks.check(self._name, self._host.current_client())
        try:
            with self._mutex:
                return action(*args, **kwargs)
        except PyroLabError:
            raise
        except Exception as err:
            translated = _translate(err)
            if translated is err:
                raise
            raise translated from err

    def _invoke(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = self._schema.methods[method]
        args, kwargs = call.validate(tuple(decode(list(args))), decode(kwargs))
        if method == self._schema.stop_method:
            self._guard.stop_ramps()  # a ramp ends between two steps: the stop action never waits for it
        func = getattr(self._service, method)
        if method in self._guard.members:
            bound = bind_arguments(call.signature, args, kwargs)

            def apply(arguments: dict[str, Any]) -> Any:
                bound.arguments.update(arguments)
                return self._run(not call.readonly, func, *bound.args, **bound.kwargs)

            return encode(plain(self._guarded(method, dict(bound.arguments), apply)))
        return encode(plain(self._run(not call.readonly, func, *args, **kwargs)))

    def _get(self, prop: str) -> Any:
        return encode(plain(self._run(False, getattr, self._service, prop)))

    def _set(self, prop: str, value: Any) -> None:
        value = self._schema.properties[prop].validate(decode(value))
        if prop in self._guard.members:
            current = self._guarded(prop, {"": value}, lambda a: self._run(True, self._assign, prop, a[""]))
        else:
            current = self._run(True, self._assign, prop, value)
        self._host.publish(self._name, prop, current)

    def _guarded(self, member: str, arguments: dict[str, Any], apply: Callable[[dict[str, Any]], Any]) -> Any:
        """Soft limits and interlocks first (nothing reaches the service if one refuses), then the call or a ramp."""
        self._guard.check(member, arguments)
        ramp = self._guard.ramp_for(member, arguments)
        if ramp is None:
            return apply(arguments)
        param, start, target, rule = ramp
        return self._guard.run_ramp(start, target, rule, lambda value: apply({param: value}),
                                    rule.reads or member)[0]

    def _read_for_rules(self, service: str | None, prop: str) -> Any:
        if service is None:
            return plain(self._run(False, getattr, self._service, prop))
        return self._host.read_remote(service, prop)

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
        """Several property values in one round trip; a failing one maps to its error text."""
        values: dict[str, Any] = {}
        for prop in self._schema.properties if names is None else names:
            if prop not in self._schema.properties:
                raise InvalidArgument(f"pyrolab_read(): {prop!r} is not a property of {self._name}")
            try:
                values[prop] = self._get(prop)
            except Exception as err:  # reported per value so one bad sensor spoils no panel
                values[prop] = {"__pyrolab__": "error", "type": type(err).__name__, "message": str(err)}
        values["__time__"] = time.time()
        return values

    @_exposed
    def pyrolab_soft_limits(self) -> dict[str, list[float | None]]:
        """The soft limits in force, by target (``"set_power.mw"``, ``"power"``)."""
        return {target: list(pair) for target, pair in self._guard.rules.limits.items()}

    @_exposed
    def pyrolab_set_soft_limit(self, target: str, low: float | None, high: float | None) -> None:
        """Change a soft limit at run time, within the class's range; logged with who did it."""
        client = self._host.current_client()
        role = getattr(client, "role", None)  # a certificate's OU once TLS exists (issue 10)
        if role is not None and role != "admin":
            raise AccessDenied(f"changing the soft limits of {self._name} needs the admin role; "
                               f"{client.identity} has the role {role!r}")
        self._host.locks.check(self._name, client)
        old = self._guard.set_limit(target, low, high)
        log.warning("%s: soft limit of %s changed from %s to [%s, %s] by %s", self._name, target,
                    list(old) if old else "none", low, high, client.identity)

    @_exposed
    def pyrolab_subscribe(self, callback_uri: str, token: str) -> None:
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
