"""Safety rules the daemon enforces on the instrument PC: soft limits, ramps and interlocks.

A rule names its target the way the lab file does: ``"set_power.mw"`` (a
method's parameter) or ``"power"`` (a property; its setter). Rules come from
the class (``soft_limits``, ``ramps``, ``interlocks`` class attributes), from
the instance (``service.narrow(...)`` in its constructor) and from the lab
file (``limits:``, ``ramps:``, ``interlocks:``); limits from several places
narrow each other, never widen. The daemon checks them before the service's
code runs, and the service's description shows the narrowed ranges, so panels
and ``help()`` tell the truth about *this* instrument.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from pyrolab_jupyter.core.errors import ConfigError
from pyrolab_jupyter.core.schema import ServiceSchema
from pyrolab_jupyter.core.suggest import close_matches

__all__ = [
    "MAX_RAMP_STEPS",
    "Interlock",
    "Limits",
    "Ramp",
    "Requirement",
    "SafetyRules",
    "apply_rules",
    "instance_description",
    "limits_pair",
    "rule_problems",
    "rules_from",
    "rules_of",
]

Limits = tuple[float | None, float | None]
MAX_RAMP_STEPS = 100_000  # a ramp is bounded: a tiny step over a huge span is refused, not run for days
_INSTANCE_ATTR = "_pyrolab_rules"


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ramp(_Rule):
    """A setpoint change larger than ``step`` goes in steps of at most ``step``, ``interval`` seconds apart.

    ``reads`` names the property that reads the current value the ramp starts
    from (for a property target, the property itself when not given).
    """

    step: float = Field(gt=0)
    interval: float = Field(ge=0, le=3600)
    reads: str | None = None


class Requirement(_Rule):
    """``property`` of ``service`` (another service's name; this one when None) must equal ``equals``."""

    property: str
    equals: Any
    service: str | None = None

    def where(self) -> str:
        return f"{self.service}.{self.property}" if self.service else self.property


class Interlock(_Rule):
    """``call`` (a method, or a property: its setter) runs only while ``require`` holds."""

    call: str
    require: Requirement
    message: str = ""

    def rule(self) -> str:
        """The rule in words, as refusals quote it."""
        return f"{self.call} requires {self.require.where()} == {self.require.equals!r}"


def limits_pair(value: Any) -> Limits:
    """``(low, high)`` from ``[low, high]`` (numbers or None); ``ValueError`` saying what is wrong."""
    try:
        pair = pydantic.TypeAdapter(tuple[float | None, float | None]).validate_python(value)
    except pydantic.ValidationError as err:
        raise ValueError(_first_error(err)) from None
    low, high = pair
    if any(bound is not None and math.isnan(bound) for bound in pair):
        raise ValueError("a limit must be a number or null, not NaN")  # NaN compares false: no limit at all
    if low is not None and high is not None and low > high:
        raise ValueError(f"[{low:g}, {high:g}]: the lower limit is above the upper one")
    return pair


@dataclasses.dataclass
class SafetyRules:
    """Every rule of one service: ``limits`` and ``ramps`` by target, ``interlocks`` in order."""

    limits: dict[str, Limits] = dataclasses.field(default_factory=dict)
    ramps: dict[str, Ramp] = dataclasses.field(default_factory=dict)
    interlocks: list[Interlock] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.limits or self.ramps or self.interlocks)

    def merged(self, other: SafetyRules) -> SafetyRules:
        """Both sets of rules: limits narrow each other, ``other``'s ramps win, interlocks add up."""
        limits = dict(self.limits)
        for target, (low, high) in other.limits.items():
            old_low, old_high = limits.get(target, (None, None))
            limits[target] = (_tighter(old_low, low, max), _tighter(old_high, high, min))
        return SafetyRules(limits, {**self.ramps, **other.ramps}, [*self.interlocks, *other.interlocks])


def _tighter(a: float | None, b: float | None, pick: Callable[[float, float], float]) -> float | None:
    if a is None:
        return b
    return a if b is None else pick(a, b)


def rules_from(
    limits: Mapping[str, Any] | None = None,
    ramps: Mapping[str, Any] | None = None,
    interlocks: Iterable[Any] | None = None,
    where: str = "",
) -> SafetyRules:
    """Rules from their plain form (the lab file's, or ``Ramp``/``Interlock`` objects).

    Raises ``ConfigError`` naming the rule and what was expected.
    """
    prefix = f"{where}: " if where else ""
    rules = SafetyRules()
    try:
        for target, value in (limits or {}).items():
            try:
                rules.limits[str(target)] = limits_pair(value)
            except ValueError as err:
                raise ConfigError(f"{prefix}limits.{target}: expected [low, high] (numbers or null), "
                                  f"got {value!r} ({_first_error(err)})") from None
        for target, value in (ramps or {}).items():
            try:
                rules.ramps[str(target)] = value if isinstance(value, Ramp) else Ramp.model_validate(value)
            except pydantic.ValidationError as err:
                raise ConfigError(f"{prefix}ramps.{target}: expected {{step: >0, interval: seconds, "
                                  f"reads: property}}, got {value!r} ({_first_error(err)})") from None
        for i, value in enumerate(interlocks or ()):
            try:
                rule = value if isinstance(value, Interlock) else Interlock.model_validate(value)
            except pydantic.ValidationError as err:
                raise ConfigError(f"{prefix}interlocks[{i}]: expected {{call, require: {{service, property, "
                                  f"equals}}, message}}, got {value!r} ({_first_error(err)})") from None
            rules.interlocks.append(rule)
    except AttributeError:
        raise ConfigError(f"{prefix}limits and ramps must be mappings, interlocks a list") from None
    return rules


def _first_error(err: Exception) -> str:
    if isinstance(err, pydantic.ValidationError):
        item = err.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in item.get("loc", ()))
        return f"{loc}: {item['msg']}" if loc else str(item["msg"])
    return str(err)


def rules_of(service: Any) -> SafetyRules:
    """The rules a service object carries: its class's, then its instance's (``narrow``, the lab file)."""
    cls = type(service)
    declared = rules_from(_declared(cls, "soft_limits"), _declared(cls, "ramps"), _declared(cls, "interlocks"),
                          where=cls.__qualname__)
    instance: SafetyRules | None = vars(service).get(_INSTANCE_ATTR) if hasattr(service, "__dict__") else None
    return declared.merged(instance) if instance else declared


def _declared(cls: type, name: str) -> Any:
    """A class attribute holding rules; None where the name is something else (an exposed property)."""
    value = getattr(cls, name, None)
    return value if isinstance(value, (Mapping, list, tuple)) else None


def apply_rules(service: Any, rules: SafetyRules) -> None:
    """Add ``rules`` to one service object (before it is hosted): limits narrow what it had."""
    current: SafetyRules = vars(service).get(_INSTANCE_ATTR) or SafetyRules()
    vars(service)[_INSTANCE_ATTR] = current.merged(rules)


# --- targets: which member and parameter a rule is about ------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Target:
    member: str
    param: str | None  # None: the property's own value
    schema: dict[str, Any]  # the class's JSON schema of the value

    @property
    def name(self) -> str:
        return f"{self.member}.{self.param}" if self.param else self.member


def _close(word: str, options: Iterable[str]) -> str:
    close = close_matches(word, list(options), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _resolve(schema: ServiceSchema, target: str, kind: str) -> _Target | str:
    """The member and parameter ``target`` names, or the problem with it."""
    member, dot, param = target.partition(".")
    cls = schema.description["class"].rpartition(":")[2]
    if dot:
        call = schema.methods.get(member)
        if call is None:
            hint = _close(member, schema.methods)
            if member in schema.properties:
                hint = f" ({member} is a property: write {member!r}, not {target!r})"
            return f"{kind} on {target!r}: {cls} has no method {member!r}{hint}"
        if param not in call.param_schemas:
            return f"{kind} on {target!r}: {member}() has no parameter {param!r}{_close(param, call.param_schemas)}"
        return _Target(member, param, call.param_schemas[param])
    prop = schema.properties.get(member)
    if prop is None:
        hint = _close(member, [*schema.properties, *schema.methods])
        if member in schema.methods:
            params = list(schema.methods[member].param_schemas)
            hint = f" ({member} is a method: name its parameter, e.g. '{member}.{params[0]}')" if params else \
                f" ({member}() takes no parameter to limit)"
        return f"{kind} on {target!r}: {cls} has no property {member!r}{hint}"
    return _Target(member, None, prop.schema)


def _is_number(schema: Mapping[str, Any]) -> bool:
    kinds = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", ()) if isinstance(s, Mapping)]
    return any(k in ("number", "integer") for k in kinds)


def rule_problems(schema: ServiceSchema, rules: SafetyRules) -> list[str]:
    """Every problem of ``rules`` for the class ``schema`` describes, one readable line each.

    Unknown members and parameters are named with ``did you mean``; a soft
    limit must be numeric and lie within the class's own (hardware) range; the
    stop action takes no rule (nothing may refuse or delay it).
    """
    problems: list[str] = []
    for target, (low, high) in rules.limits.items():
        found = _resolve(schema, target, "limit")
        if isinstance(found, str):
            problems.append(found)
            continue
        if not _is_number(found.schema):
            problems.append(f"limit on {target!r}: it is not a number ({found.schema.get('type', 'any')})")
            continue
        hw_low, hw_high = found.schema.get("minimum"), found.schema.get("maximum")
        if (low is not None and hw_low is not None and low < hw_low) or \
                (high is not None and hw_high is not None and high > hw_high):
            problems.append(f"limit on {target!r}: [{_txt(low)}, {_txt(high)}] reaches beyond the class's "
                            f"range {_txt(hw_low)} to {_txt(hw_high)}{_unit(found.schema)}; a soft limit "
                            "must lie within it")
    ramped: dict[str, str] = {}
    for target, ramp in rules.ramps.items():
        found = _resolve(schema, target, "ramp")
        if isinstance(found, str):
            problems.append(found)
            continue
        if ramped.setdefault(found.member, target) != target:
            problems.append(f"ramp on {target!r}: {found.member} already ramps {ramped[found.member]!r}; "
                            "one ramp per member")
        if not _is_number(found.schema):
            problems.append(f"ramp on {target!r}: it is not a number ({found.schema.get('type', 'any')})")
        reads = ramp.reads or (found.member if found.param is None else None)
        if reads is None:
            problems.append(f"ramp on {target!r}: say which property reads the current value "
                            f"(reads: ...{_close(found.member, schema.properties) or ''})")
        elif reads not in schema.properties:
            problems.append(f"ramp on {target!r}: reads {reads!r}, which is not a property"
                            f"{_close(reads, schema.properties)}")
        if math.isfinite(ramp.step) and ramp.step * MAX_RAMP_STEPS < _span(found.schema):
            problems.append(f"ramp on {target!r}: step {ramp.step:g} would take more than "
                            f"{MAX_RAMP_STEPS} steps across the range")
    for rule in rules.interlocks:
        member = rule.call
        if member not in schema.methods and member not in schema.properties:
            problems.append(f"interlock on {member!r}: no method or property of that name"
                            f"{_close(member, [*schema.methods, *schema.properties])}")
        elif member in schema.properties and not schema.properties[member].writable:
            problems.append(f"interlock on {member!r}: it is a read-only property; nothing to refuse")
        if rule.require.service is None and rule.require.property not in schema.properties:
            problems.append(f"interlock on {member!r}: requires {rule.require.property!r}, not a property of "
                            f"this service{_close(rule.require.property, schema.properties)}")
    stop = schema.stop_method
    targets = [("limit", t) for t in rules.limits] + [("ramp", t) for t in rules.ramps] + \
        [("interlock", r.call) for r in rules.interlocks]
    problems += [f"{kind} on {target!r}: {stop}() is the stop action, which nothing may refuse or delay"
                 for kind, target in targets if stop is not None and target.partition(".")[0] == stop]
    return problems


def _span(schema: Mapping[str, Any]) -> float:
    low, high = schema.get("minimum"), schema.get("maximum")
    return float(high - low) if low is not None and high is not None else 0.0


def _txt(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _unit(schema: Mapping[str, Any]) -> str:
    unit = schema.get("x-unit")
    return f" {unit}" if unit else ""


# --- the description of one instance ---------------------------------------------------------------


def _value_schema(description: dict[str, Any], target: _Target) -> dict[str, Any]:
    if target.param is None:
        found: dict[str, Any] = description["properties"][target.member]["schema"]
    else:
        found = description["methods"][target.member]["parameters"]["properties"][target.param]
    return found


def instance_description(schema: ServiceSchema, rules: SafetyRules) -> dict[str, Any]:
    """The class's description with ``rules`` shown: narrowed ranges, ramps and interlocks.

    A narrowed value keeps the class's range as ``x-hardware-range``; a ramp
    shows as ``x-ramp``; interlocks are listed on the member they guard.
    """
    if not rules:
        return schema.description
    description = copy.deepcopy(schema.description)
    for target_name, (low, high) in rules.limits.items():
        target = _resolve(schema, target_name, "limit")
        if isinstance(target, str):
            continue  # the Guard refuses such rules before anything is described
        value = _value_schema(description, target)
        value["x-hardware-range"] = [value.get("minimum"), value.get("maximum")]
        if low is not None:
            value["minimum"] = low
        if high is not None:
            value["maximum"] = high
        value["x-soft-limit"] = True
    for target_name, ramp in rules.ramps.items():
        target = _resolve(schema, target_name, "ramp")
        if not isinstance(target, str):
            _value_schema(description, target)["x-ramp"] = ramp.model_dump(exclude_none=True)
    for rule in rules.interlocks:
        kind = "methods" if rule.call in description["methods"] else "properties"
        entry = description[kind].get(rule.call)
        if entry is not None:
            entry.setdefault("interlocks", []).append(
                {"rule": rule.rule(), "message": rule.message, **rule.require.model_dump()})
    return description
