"""The daemon side of the safety rules: checks before a call, ramps, and run-time soft-limit changes.

One ``Guard`` per hosted service. The servant asks it before the service's
code runs (soft limits, then interlocks, which read the other service as any
client would), lets it carry a large setpoint change out as a ramp of small
calls, and tells it when the stop action runs so a ramp ends between two
steps. The rules themselves and the description they produce are in
``core.safety``.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pyrolab_jupyter.core.errors import ConfigError, InterlockError, InvalidArgument
from pyrolab_jupyter.core.safety import (
    MAX_RAMP_STEPS,
    Interlock,
    Limits,
    Ramp,
    SafetyRules,
    instance_description,
    limits_pair,
    rule_problems,
)
from pyrolab_jupyter.core.schema import ServiceSchema

__all__ = ["Guard", "Reader", "bind_arguments"]

log = logging.getLogger(__name__)

_MAX_TARGET = 200  # characters of a rule's target name sent from the network


Reader = Callable[[str | None, str], Any]  # (service or None for this one, property) -> value


class Guard:
    """One hosted service's rules at run time: checks before a call, ramps, and run-time limit changes.

    ``read(service, prop)`` reads a property of this service (``service``
    None) or of another through the nameserver; ``publish(prop, value)``
    tells subscribers, which is how a ramp's progress shows.
    """

    def __init__(self, name: str, schema: ServiceSchema, rules: SafetyRules, read: Reader,
                 publish: Callable[[str, Any], None]) -> None:
        problems = rule_problems(schema, rules)
        if problems:
            raise ConfigError(f"{name}: " + "; ".join(problems))
        self.name = name
        self._schema = schema
        self._rules = rules
        self._read = read
        self._publish = publish
        self._mutex = threading.Lock()
        self._stopped = threading.Condition()
        self._stops = 0  # bumped by the stop action; a running ramp ends when it changes
        self._refresh()

    def _refresh(self) -> None:
        rules = self._rules
        self.description = instance_description(self._schema, rules)
        self._limits: dict[str, dict[str, Limits]] = {}
        for target, pair in rules.limits.items():
            member, _, param = target.partition(".")
            self._limits.setdefault(member, {})[param] = pair
        self._ramps = {target.partition(".")[0]: (target.partition(".")[2], ramp)
                       for target, ramp in rules.ramps.items()}
        self._interlocks: dict[str, list[Interlock]] = {}
        for rule in rules.interlocks:
            self._interlocks.setdefault(rule.call, []).append(rule)
        self.members = set(self._limits) | set(self._ramps) | set(self._interlocks)

    @property
    def rules(self) -> SafetyRules:
        return self._rules

    # run-time soft limits

    def set_limit(self, target: str, low: float | None, high: float | None) -> Limits | None:
        """Replace the soft limit of ``target`` (within the class's range); returns the old one."""
        if not isinstance(target, str) or len(target) > _MAX_TARGET:  # from the network: bound the guessing
            raise InvalidArgument(f"soft limit target: expected 'method.parameter' or 'property' text of at "
                                  f"most {_MAX_TARGET} characters, got {str(target)[:40]!r}")
        try:
            pair = limits_pair((low, high))
        except ValueError as err:
            raise InvalidArgument(f"soft limit for {target!r}: {err}") from None
        with self._mutex:
            rules = SafetyRules({**self._rules.limits, target: pair}, self._rules.ramps, self._rules.interlocks)
            problems = rule_problems(self._schema, SafetyRules(limits={target: pair}))
            if problems:
                raise InvalidArgument("; ".join(problems))
            old = self._rules.limits.get(target)
            self._rules = rules
            self._refresh()
        return old

    # checks before a call

    def check(self, member: str, arguments: Mapping[str, Any]) -> None:
        """Refuse a call breaking a soft limit (``InvalidArgument``) or an interlock (``InterlockError``).

        ``arguments``: the call's arguments by name; for a property setter,
        ``{"": value}``.
        """
        for param, (low, high) in self._limits.get(member, {}).items():
            if param in arguments:
                self._check_limit(member, param, arguments[param], low, high)
        for rule in self._interlocks.get(member, ()):
            self._check_interlock(rule)

    def _check_limit(self, member: str, param: str, value: Any, low: float | None, high: float | None) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return
        if math.isnan(value):  # compares false with any bound: refused, not let through
            raise InvalidArgument(f"{member}(): {param or member}=nan is not a number; {self.name} has a soft "
                                  "limit there")
        schema = self.description["methods"][member]["parameters"]["properties"][param] if param \
            else self.description["properties"][member]["schema"]
        unit = f" ({schema['x-unit']})" if schema.get("x-unit") else ""
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        what = f"{member}(): {param}={shown}" if param else f"{member}={shown}"
        if low is not None and value < low:
            raise InvalidArgument(f"{what} is below the soft limit {low:g}{unit} of {self.name}")
        if high is not None and value > high:
            raise InvalidArgument(f"{what} is above the soft limit {high:g}{unit} of {self.name}")

    def _check_interlock(self, rule: Interlock) -> None:
        require = rule.require
        try:
            value = self._read(require.service, require.property)
        except Exception as err:  # cannot check: refuse, a safety rule fails closed
            raise InterlockError(f"{self.name}.{rule.call} refused: interlock '{rule.rule()}' cannot be "
                                 f"checked, reading {require.where()} failed ({type(err).__name__}: {err})") from None
        if value != require.equals:
            hint = f"; {rule.message}" if rule.message else ""
            raise InterlockError(f"{self.name}.{rule.call} refused by interlock '{rule.rule()}': "
                                 f"{require.where()} is {value!r}{hint}")

    # ramps

    def ramp_for(self, member: str, arguments: Mapping[str, Any]) -> tuple[str, float, float, Ramp] | None:
        """``(param, start, target, ramp)`` when this call must go as a ramp, else None."""
        found = self._ramps.get(member)
        if found is None:
            return None
        param, ramp = found
        target = arguments.get(param)
        if not isinstance(target, (int, float)) or isinstance(target, bool):
            return None
        reads = ramp.reads or member
        start = self._read(None, reads)
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not math.isfinite(start):
            # the change cannot be planned; jumping there is what the ramp exists to prevent
            raise InvalidArgument(f"{self.name}.{member}: cannot ramp to {target:g}: {reads} reads {start!r}, "
                                  "not a finite number")
        distance = abs(float(target) - float(start))
        if distance <= ramp.step:
            return None
        if distance / ramp.step > MAX_RAMP_STEPS:
            raise InvalidArgument(f"{self.name}.{member}: a ramp from {start:g} to {target:g} in steps of "
                                  f"{ramp.step:g} would take more than {MAX_RAMP_STEPS} steps")
        return param, float(start), float(target), ramp

    def run_ramp(self, start: float, target: float, ramp: Ramp, apply: Callable[[float], Any],
                 reads: str) -> tuple[Any, bool]:
        """Apply values from ``start`` to ``target`` in equal steps; ``(last result, completed)``.

        The stop action (``stop()``) ends it between two steps; each step is a
        call of its own, so the stop action never waits for the whole ramp.
        """
        steps = math.ceil(abs(target - start) / ramp.step)  # bounded by ramp_for
        with self._stopped:
            stops = self._stops
        result: Any = None
        value = start
        for k in range(1, steps + 1):
            with self._stopped:
                if self._stops != stops:
                    log.info("%s: ramp stopped at %g on its way to %g", self.name, value, target)
                    return result, False
            value = target if k == steps else start + (target - start) * k / steps
            result = apply(value)
            self._publish(reads, self._read(None, reads))
            if k < steps:
                with self._stopped:
                    self._stopped.wait_for(lambda: self._stops != stops, timeout=ramp.interval)
        return result, True

    def stop_ramps(self) -> None:
        """End any ramp of this service between two steps (the stop action calls this first)."""
        with self._stopped:
            self._stops += 1
            self._stopped.notify_all()


def bind_arguments(signature: inspect.Signature, args: tuple[Any, ...],
                   kwargs: Mapping[str, Any]) -> inspect.BoundArguments:
    """A validated call's arguments by name (defaults applied), so rules can find their parameter."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return bound
