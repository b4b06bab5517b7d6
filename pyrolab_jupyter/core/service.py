"""Authoring services: the ``Service`` base class, ``expose`` and the ``Range``/``Unit`` markers.

A service is a plain class; ``expose`` marks what clients may reach and the
annotations say what a value may be. The daemon reads both (see
``core.schema``) to publish a description and to validate every call before
the method body runs, so a bad argument never reaches the instrument.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, overload

import annotated_types

from pyrolab_jupyter.core.safety import (
    Interlock,
    Ramp,
    SafetyRules,
    apply_rules,
    instance_description,
    rules_of,
)
from pyrolab_jupyter.core.schema import ServiceSchema

__all__ = ["Exposure", "Range", "Service", "Unit", "expose", "exposed_members", "schema_of"]

_EXPOSE_ATTR = "__pyrolab_expose__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Exposure:
    """What ``expose`` said about one member.

    ``changes``: the properties a method or setter may change (``None``: any of
    them). ``poll``: seconds between daemon-side reads of a property that
    changes by itself, while someone subscribes. ``stop``: the service's stop
    action, callable by anyone, locked or not.
    """

    readonly: bool = False
    changes: tuple[str, ...] | None = None
    poll: float | None = None
    stop: bool = False


@overload
def expose(member: F) -> F: ...
@overload
def expose(member: property) -> property: ...
@overload
def expose(
    *,
    readonly: bool = False,
    changes: list[str] | tuple[str, ...] | None = None,
    poll: float | None = None,
    stop: bool = False,
) -> Callable[[F], F]: ...


def expose(
    member: Any = None,
    *,
    readonly: bool = False,
    changes: list[str] | tuple[str, ...] | None = None,
    poll: float | None = None,
    stop: bool = False,
) -> Any:
    """Make a method or property reachable by clients.

    ``@expose`` on a method, or above ``@property`` (setters defined later with
    ``@name.setter`` stay exposed). ``expose(readonly=True)`` marks a method
    that changes nothing, so clients may call it while another holds the lock.
    ``changes=[...]`` names the properties a call may change (clients re-read
    just those), ``poll=0.2`` makes the daemon read a property that changes by
    itself while someone subscribes, and ``stop=True`` marks the method that
    halts whatever the service is doing (anyone may call it, locked or not).
    """
    if poll is not None and not poll > 0:
        raise ValueError(f"expose(poll={poll!r}): the poll period must be a positive number of seconds")
    if isinstance(changes, str):
        raise TypeError(f"expose(changes={changes!r}): give a list of property names")
    exposure = Exposure(
        readonly=readonly,
        changes=None if changes is None else tuple(changes),
        poll=poll,
        stop=stop,
    )

    def mark(target: Any) -> Any:
        func = target.fget if isinstance(target, property) else target
        if func is None or not callable(func):
            raise TypeError(f"expose() takes a method or a property, not {target!r}")
        if poll is not None and not isinstance(target, property):
            raise TypeError(f"expose(poll=...) applies to properties, not to the method {func.__name__}()")
        if stop and isinstance(target, property):
            raise TypeError(f"expose(stop=True) applies to a method, not to the property {func.__name__}")
        setattr(func, _EXPOSE_ATTR, exposure)
        return target

    if member is None:
        return mark
    return mark(member)


def _exposure(member: Any) -> Exposure | None:
    func = member.fget if isinstance(member, property) else member
    return getattr(func, _EXPOSE_ATTR, None)


def exposed_members(cls: type) -> dict[str, tuple[Any, Exposure]]:
    """Exposed members of a service class: ``{name: (method_or_property, exposure)}``.

    Walks the MRO so subclasses inherit exposure; names starting with ``_`` are
    never exposed.
    """
    found: dict[str, tuple[Any, Exposure]] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            if name.startswith("_"):
                continue
            mark = _exposure(member)
            if mark is not None:
                found[name] = (member, mark)
            elif name in found:
                del found[name]  # overridden without expose: no longer public
    return found


@dataclasses.dataclass(frozen=True)
class Range(annotated_types.GroupedMetadata):
    """Inclusive bounds of a number: ``Annotated[float, Range(0, 50)]``.

    Either bound may be ``None``. It becomes JSON Schema minimum/maximum and
    is enforced by the daemon before the call.
    """

    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"Range(min={self.min}, max={self.max}): min is above max")

    def __iter__(self) -> Iterator[object]:
        if self.min is not None:
            yield annotated_types.Ge(self.min)
        if self.max is not None:
            yield annotated_types.Le(self.max)


@dataclasses.dataclass(frozen=True)
class Unit:
    """The physical unit of a value: ``Annotated[float, Unit("mW")]`` → ``x-unit``."""

    symbol: str

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema: dict[str, Any] = handler(core_schema)
        schema["x-unit"] = self.symbol
        return schema


class Service:
    """Base class of everything a daemon hosts.

    Subclasses expose methods and properties with ``expose``. Calls to one
    service are serialised by the daemon unless ``thread_safe`` is true.
    ``close()`` runs when the hosting daemon stops: release hardware there.

    Safety rules the daemon enforces (see ``core.safety``), as class
    attributes in the lab file's form: ``soft_limits = {"set_power.mw": (0,
    20)}``, ``ramps = {"set_power.mw": Ramp(step=1, interval=0.05,
    reads="power")}``, ``interlocks = [Interlock(call="turn_on", require=...)]``;
    per instance, ``self.narrow(...)`` in the constructor.

    ``instance_mode``: ``single`` (one instance for all, the default),
    ``session`` (one per client, closed when it disconnects) or ``percall``
    (a fresh one per call); see ``core.instances``.
    """

    thread_safe: bool = False  # a class default; a lab file may set it per instance
    instance_mode: ClassVar[str] = "single"  # or "session", "percall" (see core.instances); a lab file may overrule
    soft_limits: ClassVar[Mapping[str, Sequence[float | None]]] = {}
    ramps: ClassVar[Mapping[str, Ramp | Mapping[str, Any]]] = {}
    interlocks: ClassVar[Sequence[Interlock | Mapping[str, Any]]] = ()
    _pyrolab_publish: Callable[[str, Any], None] | None = None

    def describe(self) -> dict[str, Any]:
        """This instance's description: JSON Schema of every exposed member, ranges narrowed by its limits."""
        return instance_description(schema_of(type(self)), rules_of(self))

    def narrow(self, target: str, low: float | None, high: float | None) -> None:
        """Narrow the range of a parameter (``"set_power.mw"``) or property (``"power"``) for this instance.

        Call it in the constructor: the daemon then refuses values outside
        ``[low, high]`` before the service's code runs, and the description
        (panels, ``help()``) shows the narrowed range.
        """
        apply_rules(self, SafetyRules(limits={target: (low, high)}))

    def notify(self, name: str, value: Any) -> None:
        """Announce that property ``name`` now has ``value`` to subscribed clients.

        Setters announce by themselves; call this for values that change on
        their own (a stage moving, a temperature drifting). Does nothing when
        the service is not hosted or nobody listens.
        """
        publish = self._pyrolab_publish
        if publish is not None:
            publish(name, value)

    def close(self) -> None:
        """Release resources; called once when the hosting daemon stops."""


_schemas: dict[type, ServiceSchema] = {}
_schemas_mutex = threading.Lock()


def schema_of(cls: type) -> ServiceSchema:
    """The schema and call validators of a service class, built once per class."""
    with _schemas_mutex:
        found = _schemas.get(cls)
        if found is None:
            found = _schemas[cls] = ServiceSchema(cls, exposed_members(cls))
        return found
