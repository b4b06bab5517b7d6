"""Soft limits, ramps and interlocks as rules: their forms, how they combine, their problems, the description."""

from __future__ import annotations

import pytest

from pyrolab_jupyter.core.safety import (
    Interlock,
    Ramp,
    SafetyRules,
    apply_rules,
    instance_description,
    rule_problems,
    rules_from,
    rules_of,
)
from pyrolab_jupyter.core.service import schema_of
from pyrolab_jupyter.errors import ConfigError
from pyrolab_jupyter.instruments.sim import Laser

# --- the rules, in this process ----------------------------------------------------------------------


def test_limits_from_several_places_only_narrow():
    rules = rules_from({"set_power.mw": [0, 30]}).merged(rules_from({"set_power.mw": [5, 40]}))
    assert rules.limits == {"set_power.mw": (5, 30)}
    laser = Laser(max_power_mw=20)
    apply_rules(laser, rules_from({"set_power.mw": [None, 25]}))  # the lab file cannot widen the constructor's
    assert rules_of(laser).limits["set_power.mw"] == (0, 20)


def test_rule_forms_are_checked_with_the_key_named():
    with pytest.raises(ConfigError, match=r"lab.x: limits.power: expected \[low, high\]"):
        rules_from({"power": [3, 1]}, where="lab.x")
    with pytest.raises(ConfigError, match=r"ramps.power: .*step"):
        rules_from(ramps={"power": {"step": 0, "interval": 0.1}})
    with pytest.raises(ConfigError, match=r"interlocks\[0\]"):
        rules_from(interlocks=[{"call": "turn_on"}])


def test_unknown_members_and_parameters_are_named_with_a_guess():
    rules = rules_from(
        {"set_powr.mw": [0, 1], "set_power.w": [0, 1], "wavelength": [1400, 1550], "mode": [0, 1]},
        {"set_power.mw": {"step": 1, "interval": 0, "reads": "powr"}, "turn_on": {"step": 1, "interval": 0}},
        [{"call": "turn_onn", "require": {"service": "lab.shutter", "property": "closed", "equals": True}}],
    )
    problems = "\n".join(rule_problems(schema_of(Laser), rules))
    assert "no method 'set_powr' (did you mean 'set_power'?)" in problems
    assert "set_power() has no parameter 'w' (did you mean 'mw'?)" in problems
    assert "[1400, 1550] reaches beyond the class's range 1500 to 1630 nm" in problems
    assert "limit on 'mode': it is not a number" in problems
    assert "reads 'powr', which is not a property (did you mean 'power'?)" in problems
    assert "turn_on() takes no parameter" in problems
    assert "interlock on 'turn_onn': no method or property of that name (did you mean 'turn_on'?)" in problems
    assert rule_problems(schema_of(Laser), rules_from({"set_power.mw": [0, 20]})) == []


def test_the_description_shows_the_instance():
    assert Laser().describe() == schema_of(Laser).description  # no rules: the class's own, unchanged
    described = Laser(max_power_mw=20).describe()
    mw = described["methods"]["set_power"]["parameters"]["properties"]["mw"]
    assert (mw["minimum"], mw["maximum"], mw["x-hardware-range"]) == (0, 20, [0, 50])
    assert described["properties"]["power"]["schema"]["maximum"] == 20
    assert schema_of(Laser).description["properties"]["power"]["schema"]["maximum"] == 50  # class untouched
    rules = SafetyRules(ramps={"set_power.mw": Ramp(step=1, interval=0.05, reads="power")},
                        interlocks=[Interlock.model_validate({"call": "turn_on", "message": "close it",
                                                              "require": {"service": "lab.shutter",
                                                                          "property": "closed", "equals": True}})])
    described = instance_description(schema_of(Laser), rules)
    assert described["methods"]["set_power"]["parameters"]["properties"]["mw"]["x-ramp"] == \
        {"step": 1, "interval": 0.05, "reads": "power"}
    [rule] = described["methods"]["turn_on"]["interlocks"]
    assert rule["rule"] == "turn_on requires lab.shutter.closed == True" and rule["message"] == "close it"


def test_one_ramp_per_member():
    from pyrolab_jupyter.instruments.sim import Stage

    rules = rules_from(ramps={"move_to.position_mm": {"step": 1, "interval": 0, "reads": "position"},
                              "move_to.wait": {"step": 1, "interval": 0, "reads": "position"}})
    problems = rule_problems(schema_of(Stage), rules)
    assert "ramp on 'move_to.wait': move_to already ramps 'move_to.position_mm'; one ramp per member" in problems


def test_the_stop_action_takes_no_rule():
    from safetyservices import Source

    rules = rules_from(interlocks=[{"call": "stop", "require": {"property": "level", "equals": 0}}])
    assert rule_problems(schema_of(Source), rules) == [
        "interlock on 'stop': stop() is the stop action, which nothing may refuse or delay"]


def test_a_nan_limit_is_refused_it_would_limit_nothing():
    with pytest.raises(ConfigError, match="not NaN"):
        rules_from({"power": [0, float("nan")]})
