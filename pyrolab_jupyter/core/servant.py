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
import logging
import math
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from Pyro5.callcontext import current_context

from pyrolab_jupyter.core.audit import AuditLog, call_context
from pyrolab_jupyter.core.bulk import ServerSide, server_side
from pyrolab_jupyter.core.errors import (
    AccessDenied,
    InvalidArgument,
    LockLost,
    PyroLabError,
    RemoteError,
    ServiceBusy,
)
from pyrolab_jupyter.core.guard import Guard, bind_arguments
from pyrolab_jupyter.core.instances import Instances
from pyrolab_jupyter.core.locks import ClientInfo, LockTable
from pyrolab_jupyter.core.naming import CLIENT_MEMBERS
from pyrolab_jupyter.core.poller import SKIP
from pyrolab_jupyter.core.publish import CALL_PROPERTY, LOCK_PROPERTY, Snapshot, check_callback
from pyrolab_jupyter.core.safety import rules_of
from pyrolab_jupyter.core.schema import plain
from pyrolab_jupyter.core.serialization import decode, encode, pushed
from pyrolab_jupyter.core.service import Service, schema_of
from pyrolab_jupyter.core.settings import SETTINGS
from pyrolab_jupyter.core.snapshot import class_version
from pyrolab_jupyter.core.wire import BULK, HOLDS_LOCK, WAIT

if TYPE_CHECKING:
    from pyrolab_jupyter.core.schema import ServiceSchema

__all__ = ["CONTROL_MEMBERS", "RESERVED_NAMES", "Host", "lane_target", "make_servant"]

log = logging.getLogger(__name__)


class Host(Protocol):
    """What a servant needs from the daemon hosting it."""

    locks: LockTable
    audit: AuditLog
    objectsById: dict[str, Any]  # noqa: N815 (Pyro5's name): every object the daemon serves

    def current_client(self) -> ClientInfo: ...
    def locks_changed(self, service: str) -> None: ...
    def publish(self, service: str, prop: str, value: Any) -> None: ...
    def listened(self, service: str) -> bool: ...
    def subscribe(self, service: str, callback_uri: str, token: str, client_id: str, snapshot: Snapshot) -> None: ...
    def unsubscribe(self, token: str) -> None: ...
    def subscribed(self, token: str) -> bool: ...
    def read_remote(self, service: str, prop: str) -> Any: ...


CONTROL_MEMBERS = frozenset({
    "describe", "pyrolab_lock", "pyrolab_unlock", "pyrolab_force_unlock", "pyrolab_lock_info",
    "pyrolab_read", "pyrolab_subscribe", "pyrolab_unsubscribe", "pyrolab_subscribed",
    "pyrolab_soft_limits", "pyrolab_set_soft_limit", "pyrolab_history", "pyrolab_snapshot",
})
RESERVED_NAMES = CONTROL_MEMBERS | CLIENT_MEMBERS


def _exposed(func: Callable[..., Any]) -> Callable[..., Any]:
    func._pyroExposed = True  # type: ignore[attr-defined]
    return func


_OUTCOME_TEXT = 200  # an announced error message is cut to this
_SCALARS = frozenset({int, float, str, bool, type(None)})  # arguments that need no decoding


def _outcome(err: BaseException | None) -> str:
    return "ok" if err is None else f"{type(err).__name__}: {err}"[:_OUTCOME_TEXT]


def _translated(action: Callable[..., Any], args: Any = (), kwargs: dict[str, Any] | None = None) -> Any:
    """Run service code; an error the client could not rebuild leaves as ``RemoteError``. The service's
    arguments come as a tuple and a dict, so its parameters may have any names."""
    try:
        return action(*args, **(kwargs or {}))
    except PyroLabError:
        raise
    except Exception as err:
        err._pyrolab_raised_by_service = True  # type: ignore[attr-defined]
        translated = _translate(err)
        if translated is err:
            raise
        raise translated from err


DEFAULT_WAIT = 10.0  # how long a caller that does not say (a plain Pyro5 client) waits for a busy service
_MAX_WAITERS = 8  # callers queued on one busy service; more are told ServiceBusy at once
_MAX_CONCURRENT = 32  # calls a thread-safe service runs at once (the daemon has 128 workers)


def _note(name: str) -> str:
    raw = (current_context.annotations or {}).get(name)
    return bytes(raw).decode("ascii", "replace") if raw is not None else ""


def _bulk() -> ServerSide | None:
    """Where this call's large arrays go: out of band when the caller said it fetches them so."""
    return server_side(BULK in (current_context.annotations or {}))


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

    def try_acquire(self, timeout: float) -> bool:
        """A slot within ``timeout`` or False (daemon-side polls skip a busy service instead of queueing)."""
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()

    def enter(self, member: str, caller: Callable[[], str]) -> _Entered:
        """Take a slot (waiting as ``_wait`` allows): ``with gate.enter(...):`` runs one call through it."""
        if not self._lock.acquire(blocking=False):
            self._wait(member)
        me = threading.get_ident()
        outer = me in self._running
        if not outer:
            self._running[me] = (member, caller(), time.monotonic())
        return _Entered(self, me, outer)

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


class _Entered:
    """A slot of a ``_Gate`` taken for one call (a class, not a generator: this is on every call's path)."""

    __slots__ = ("_gate", "_me", "_outer")

    def __init__(self, gate: _Gate, me: int, outer: bool) -> None:
        self._gate, self._me, self._outer = gate, me, outer

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        if not self._outer:
            self._gate._running.pop(self._me, None)
        self._gate._lock.release()


class _Audited:
    """Records a state-changing request in the daemon's audit log, with its outcome, when it ends."""

    __slots__ = ("_servant", "_kind", "_member", "_args", "_who")

    def __init__(self, servant: _ServantBase, kind: str, member: str, args: Any) -> None:
        self._servant, self._kind, self._member, self._args = servant, kind, member, args
        self._who = servant._host.current_client().identity

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: object) -> None:
        servant = self._servant
        outcome, error = ("ok", None) if kind is None else (kind.__name__, str(err))
        servant._host.audit.record(self._who, servant._name, self._member, self._kind, self._args, outcome, error,
                                   call_context(current_context.annotations))


def _encoded(result: Any, side: ServerSide | None, find_side: bool = False) -> Any:
    """A result for the wire: plain values pass as they are; anything else through ``plain`` and ``encode``
    (``find_side``: look up where large arrays go only then)."""
    if type(result) in _SCALARS:
        return result
    return encode(plain(result), _bulk() if find_side else side)


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

    def __init__(self, name: str, service: Service, host: Host, description: str | None,
                 instances: Instances | None = None) -> None:
        self._name = name
        self._service = service  # single mode's only object; in the others the template of the description
        self._instances = instances
        self._now: dict[int, tuple[Service, Any]] = {}  # thread -> the object and gate serving its call
        self._host = host
        self._schema: ServiceSchema = schema_of(type(service))
        self._gate = _Gate(name, service.thread_safe)
        self._text = description
        self._guard = Guard(name, self._schema, rules_of(service), self._read_for_rules,
                            lambda prop, value: host.publish(name, prop, value))

    @property
    def _description(self) -> dict[str, Any]:
        """This instance's description: the class's, with its safety rules' narrowed ranges."""
        described = {**self._guard.description, "name": self._name}
        if self._instances is not None:
            described["instance_mode"] = self._instances.mode
        if self._text:
            described["description"] = self._text
        return described

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

    @property
    def instance_mode(self) -> str:
        return "single" if self._instances is None else self._instances.mode

    def _target(self) -> Service:
        """The object serving this call: the only one (single), the caller's own (session), a fresh one."""
        if self._instances is None:
            return self._service
        found = self._now.get(threading.get_ident())
        return found[0] if found is not None else self._service

    @contextlib.contextmanager
    def _serving(self) -> Any:
        """Choose the object for this call (session, percall); nested uses keep the outer choice."""
        me = threading.get_ident()
        if self._instances is None or me in self._now:
            yield
            return
        with self._instances.use(self._host.current_client().client_id) as chosen:
            self._now[me] = chosen
            try:
                yield
            finally:
                del self._now[me]

    def _run(self, member: str, action: Callable[..., Any], args: Any = (), kwargs: dict[str, Any] | None = None) -> Any:
        """Run service code through the service's gate (one call at a time unless thread-safe). Arguments come
        as a tuple and a dict, so a parameter of the service's may have any name (``member`` too)."""
        found = self._now.get(threading.get_ident()) if self._instances is not None else None
        gate = found[1] if found is not None else self._gate
        with gate.enter(member, self._caller):
            return _translated(action, args, kwargs)

    def _caller(self) -> str:
        return self._host.current_client().identity

    def _decoded(self, value: Any, side: ServerSide | None = None) -> Any:
        try:
            return decode(value, side)
        except Exception as err:  # noqa: BLE001 - a hand-made or corrupted tagged value, whatever it breaks
            raise InvalidArgument(f"{self._name}: a value could not be decoded ({type(err).__name__}: "
                                  f"{str(err)[:80]}); send plain values or numpy arrays") from None

    def _audited(self, kind: str, member: str, args: Any = ()) -> _Audited:
        """``with self._audited(...):`` records a state-changing request in the audit log, with its outcome."""
        return _Audited(self, kind, member, args)

    def _invoke(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._instances is None:  # single mode: no choosing on the hot path
            return self._invoke_on(method, args, kwargs)
        with self._serving():
            return self._invoke_on(method, args, kwargs)

    def _invoke_on(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = self._schema.methods[method]
        if not isinstance(kwargs, dict) or kwargs and not all(isinstance(k, str) for k in kwargs):
            raise InvalidArgument(f"{self._name}.{method}(): keyword arguments must be a dict with str keys")
        side = _bulk()
        raw_args = list(args) if _SCALARS.issuperset(map(type, args)) else self._decoded(list(args), side)
        raw_kwargs = self._decoded(kwargs, side) if kwargs else kwargs
        if call.readonly and not call.stop:
            return self._invoke_checked(call, method, raw_args, raw_kwargs, side)
        with self._audited("call", method, [*raw_args, raw_kwargs] if raw_kwargs else raw_args):
            return self._invoke_checked(call, method, raw_args, raw_kwargs, side)

    def _invoke_checked(self, call: Any, method: str, raw_args: list[Any], raw_kwargs: dict[str, Any],
                        side: ServerSide | None) -> Any:
        """Validation, lock, rules, ramp or call, and the announcement (``_invoke_on`` audits around it)."""
        args, kwargs = call.validate(tuple(raw_args), raw_kwargs)
        action = getattr(self._target(), method)
        if call.stop:  # no rules on the stop action; it skips lock and mutex to reach a busy service
            self._guard.stop_ramps()  # a ramp ends between two steps: the stop action never waits for it
            return encode(plain(self._announced(method, call.changes, _translated, (action, args, kwargs))), side)
        if not call.readonly:
            self._check_lock()  # a refusal changed nothing
        if method in self._guard.members:
            bound = bind_arguments(call.signature, args, kwargs)
            arguments = dict(bound.arguments)
            self._guard.check(method, arguments)  # soft limits and interlocks: a refusal changed nothing

            def apply(values: dict[str, Any]) -> Any:
                bound.arguments.update(values)
                return self._run(f"{method}()", action, bound.args, bound.kwargs)

            run: Callable[..., Any] = self._ramped
            steps: tuple[Any, ...] = (method, arguments, apply)
        else:
            run, steps = self._run, (f"{method}()", action, args, kwargs)
        if call.readonly:
            return _encoded(run(*steps), side)
        return _encoded(self._announced(method, call.changes, run, steps), side)

    def _announced(self, method: str, changes: tuple[str, ...] | None, run: Callable[..., Any],
                   steps: tuple[Any, ...]) -> Any:
        """``run(*steps)``, a state-changing call, and announce its outcome, success or error."""
        try:
            result = run(*steps)
        except BaseException as err:
            self._announce(method, "call", changes, err)
            raise
        self._announce(method, "call", changes, None)
        return result

    def _announce(self, member: str, kind: str, changes: tuple[str, ...] | None, err: BaseException | None) -> None:
        """Tell subscribers a state-changing call completed, so they re-read what it may have changed."""
        if not self._host.listened(self._name):
            return
        self._host.publish(self._name, CALL_PROPERTY, {
            "member": member, "kind": kind, "caller": self._host.current_client().identity,
            "outcome": _outcome(err), "changes": None if changes is None else list(changes),
        })

    def _get(self, prop: str) -> Any:
        if self._instances is None:
            return self._read(self._service, prop)
        with self._serving():
            return self._read(self._target(), prop)

    def _read(self, target: Service, prop: str) -> Any:
        return _encoded(self._run(f"reading {prop}", getattr, (target, prop)), None, find_side=True)

    def _set(self, prop: str, value: Any) -> None:
        if self._instances is None:
            return self._set_on(prop, value)
        with self._serving():
            self._set_on(prop, value)

    def _set_on(self, prop: str, value: Any) -> None:
        value = self._decoded(value, _bulk())
        with self._audited("set", prop, [value]):
            current, changes = self._assign_checked(prop, value)
        if self._instances is None:  # another client's own instance is none of a subscriber's business
            self._host.publish(self._name, prop, current)
        self._announce(prop, "set", tuple(c for c in changes if c != prop) if changes is not None else None, None)

    def _assign_checked(self, prop: str, value: Any) -> tuple[Any, tuple[str, ...] | None]:
        """Validation, lock, rules, ramp or assignment of a property set; (value now, what it may change)."""
        value = self._schema.properties[prop].validate(value)
        self._check_lock()
        guarded = prop in self._guard.members
        if guarded:
            self._guard.check(prop, {"": value})
        changes = self._schema.properties[prop].changes
        try:
            if guarded:
                current = self._ramped(prop, {"": value},
                                       lambda a: self._run(f"setting {prop}", self._assign, (prop, a[""])))
            else:
                current = self._run(f"setting {prop}", self._assign, (prop, value))
        except BaseException as err:
            self._announce(prop, "set", changes, err)
            raise
        return current, changes

    def _read_or_error(self, prop: str, push: bool = False) -> Any:
        """The encoded value, or the encoded error: one bad sensor spoils no panel. ``push``: for a
        subscriber of the shared instance (large arrays as ``REREAD`` markers, see ``pushed``)."""
        try:
            if push:
                return pushed(plain(self._run(f"reading {prop}", getattr, (self._service, prop))))
            return self._get(prop)
        except Exception as err:
            return encode(err)

    def snapshot(self) -> dict[str, Any]:
        """Every property's current value (encoded, errors as values) and the lock holder; only the holder
        when each client has its own instance (the values are nobody else's)."""
        shared = self._instances is None
        values = {prop: self._read_or_error(prop, push=True) for prop in self._schema.properties if shared}
        lease = self._host.locks.holder(self._name)
        values[LOCK_PROPERTY] = lease.holder.identity if lease else None
        return values

    @property
    def poll_periods(self) -> dict[str, float]:
        if self._instances is not None:  # no shared object to poll
            return {}
        return {n: p.poll for n, p in self._schema.properties.items() if p.poll is not None}

    def poll_read(self, prop: str) -> Any:
        """A polled value; ``SKIP`` when a non-thread-safe service is busy for longer than a poll period."""
        period = self._schema.properties[prop].poll or 0.0
        if not self._gate.try_acquire(period):
            return SKIP
        try:
            return plain(getattr(self._service, prop))
        except Exception as err:
            return _translate(err)
        finally:
            self._gate.release()

    def _ramped(self, member: str, arguments: dict[str, Any], apply: Callable[[dict[str, Any]], Any]) -> Any:
        """The call, or a ramp of calls when the change is larger than the member's ramp step (rules checked)."""
        ramp = self._guard.ramp_for(member, arguments)
        if ramp is None:
            return apply(arguments)
        param, start, target, rule = ramp
        return self._guard.run_ramp(start, target, rule, lambda value: apply({param: value}),
                                    rule.reads or member)[0]

    def _read_for_rules(self, service: str | None, prop: str) -> Any:
        if service is None:
            return plain(self._run(f"reading {prop}", getattr, (self._target(), prop)))
        return self._host.read_remote(service, prop)

    def _assign(self, prop: str, value: Any) -> Any:
        target = self._target()
        setattr(target, prop, value)
        return plain(getattr(target, prop))

    # control members, reachable remotely under the reserved prefix

    @_exposed
    def describe(self) -> dict[str, Any]:
        """The service's description (JSON Schema per member), a plain dict."""
        lease = self._host.locks.holder(self._name)
        return {**self._description, "locked_by": lease.holder.identity if lease else None}

    @_exposed
    def pyrolab_lock(self, lease: float | None = SETTINGS.lock_lease) -> dict[str, Any]:
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
    def pyrolab_soft_limits(self) -> dict[str, list[float | None]]:
        """The soft limits in force, by target (``"set_power.mw"``, ``"power"``)."""
        return {target: list(pair) for target, pair in self._guard.rules.limits.items()}

    @_exposed
    def pyrolab_set_soft_limit(self, target: str, low: float | None, high: float | None) -> None:
        """Change a soft limit at run time, within the class's range; logged with who did it."""
        client = self._host.current_client()
        with self._audited("call", "set_soft_limit", [target, low, high]):
            role = client.role  # a certificate's OU under TLS; None without
            if role is not None and role != "admin":
                raise AccessDenied(f"changing the soft limits of {self._name} needs the admin role; "
                                   f"{client.identity} has the role {role!r}")
            self._host.locks.check(self._name, client)
            old = self._guard.set_limit(target, low, high)
        log.warning("%s: soft limit of %s changed from %s to [%s, %s] by %s", self._name, target,
                    list(old) if old else "none", low, high, client.identity)

    @_exposed
    def pyrolab_subscribe(self, callback_uri: str, token: str) -> None:
        """Push changes to ``callback_uri`` (this caller's own address only), the current values first."""
        if not isinstance(callback_uri, str) or not isinstance(token, str):
            raise InvalidArgument("subscribe: the callback URI and the token must be strings")
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


def lane_target(obj: Any, method: str, vargs: list[Any] | tuple[Any, ...],
                kwargs: dict[Any, Any]) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None:
    """What a call on the lean path (``core.lane``) runs: only members a servant exposes to Pyro5 too, so
    the lane reaches nothing Pyro5's own path would refuse; None leaves the call to Pyro5."""
    if not isinstance(obj, _ServantBase):
        return None
    schema = obj._schema
    if method in schema.methods:
        return obj._invoke, (method, vargs, kwargs), {}
    if method == "__getattr__":
        if len(vargs) == 1 and type(vargs[0]) is str and vargs[0] in schema.properties:
            return obj._get, (vargs[0],), {}
        return None
    if method == "__setattr__":
        prop = schema.properties.get(vargs[0]) if len(vargs) == 2 and type(vargs[0]) is str else None
        return (obj._set, (vargs[0], vargs[1]), {}) if prop is not None and prop.writable else None
    if method in CONTROL_MEMBERS and all(type(k) is str for k in kwargs):
        return getattr(obj, method), tuple(vargs), kwargs
    return None


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


def make_servant(name: str, service: Service, host: Host, description: str | None = None,
                 instances: Instances | None = None) -> _ServantBase:
    """Build the Pyro5-facing object for ``service`` registered as ``name`` (``instances``: the objects
    that serve calls in session or percall mode; ``service`` is then the template of the description)."""
    schema = schema_of(type(service))
    clash = RESERVED_NAMES.intersection(schema.methods).union(RESERVED_NAMES.intersection(schema.properties))
    if clash:
        raise ValueError(f"{type(service).__qualname__} exposes {', '.join(sorted(clash))}, reserved for "
                         "the client's own API (RemoteService); rename them")
    members: dict[str, Any] = {n: _method(n) for n in schema.methods}
    members.update({n: _property(n, p.writable) for n, p in schema.properties.items()})
    cls = type(f"{type(service).__name__}Servant", (_ServantBase,), members)
    servant: _ServantBase = cls(name, service, host, description, instances)
    return servant
