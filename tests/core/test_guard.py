"""The daemon enforcing safety rules over real sockets: limits before the driver, ramps, interlocks, run-time limits."""

from __future__ import annotations

import os
import threading

import pytest
from conftest import wait_for

from pyrolab_jupyter import Lab
from pyrolab_jupyter.core.guard import Guard
from pyrolab_jupyter.core.safety import rules_from
from pyrolab_jupyter.core.service import schema_of
from pyrolab_jupyter.errors import AccessDenied, ConfigError, InterlockError, InvalidArgument, PyroLabError

LASER = "pyrolab_jupyter.instruments.sim:Laser"
SHUTTER = "pyrolab_jupyter.instruments.shutter:Shutter"
SOURCE = "safetyservices:Source"


def _guard(rules, values):
    from safetyservices import Source

    published = []
    guard = Guard("t.source", schema_of(Source), rules, lambda service, prop: values[prop],
                  lambda prop, value: published.append((prop, value)))
    return guard, published


def test_a_ramp_goes_in_equal_steps_no_larger_than_step():
    values = {"level": 1.0}
    guard, published = _guard(rules_from(ramps={"set_level.volts": {"step": 0.4, "interval": 0, "reads": "level"}}),
                              values)
    assert guard.ramp_for("set_level", {"volts": 1.3}) is None  # within one step: a plain call
    param, start, target, ramp = guard.ramp_for("set_level", {"volts": 0.0})
    applied = []

    def apply(value):
        applied.append(value)
        values["level"] = value

    assert guard.run_ramp(start, target, ramp, apply, "level") == (None, True)
    assert applied == pytest.approx([2 / 3, 1 / 3, 0.0])  # 3 equal steps of 1/3 (not 0.4, 0.4, 0.2)
    assert applied[-1] == 0.0  # ending exactly on the target
    assert published == [("level", v) for v in applied]


def test_the_stop_action_ends_a_ramp_between_two_steps():
    values = {"level": 0.0}
    guard, _ = _guard(rules_from(ramps={"set_level.volts": {"step": 1, "interval": 30, "reads": "level"}}), values)
    applied = []
    stopper = threading.Timer(0.2, guard.stop_ramps)  # the stop action, from another client's thread
    stopper.start()
    try:
        _, start, target, ramp = guard.ramp_for("set_level", {"volts": 5.0})
        assert guard.run_ramp(start, target, ramp, applied.append, "level") == (None, False)
    finally:
        stopper.cancel()
    assert applied == [1.0]  # woken from its 30 s interval at once, and no further step


def test_rules_that_cannot_hold_are_refused_before_hosting():
    with pytest.raises(ConfigError, match=r"t.source: limit on 'set_level.volts': \[-20, 0\] reaches beyond"):
        _guard(rules_from({"set_level.volts": [-20, 0]}), {})
    guard, _ = _guard(rules_from(ramps={"set_level.volts": {"step": 0.5, "interval": 0, "reads": "level"}}),
                      {"level": float("nan")})
    with pytest.raises(InvalidArgument, match="level reads nan, not a finite number"):
        guard.ramp_for("set_level", {"volts": 1.0})


@pytest.mark.network
def test_narrowed_range_is_described_and_enforced_before_the_driver_runs(lab, nameserver, daemon_factory):
    daemon_factory({
        "t.laser": {"class": LASER, "args": {"max_power_mw": 20}},
        "t.source": {"class": SOURCE, "limits": {"set_level.volts": [0, 3]}},
    }, nameserver.address)
    laser = lab.connect("t.laser")
    mw = laser.describe()["methods"]["set_power"]["parameters"]["properties"]["mw"]
    assert (mw["minimum"], mw["maximum"]) == (0, 20)
    with pytest.raises(InvalidArgument, match=r"set_power\(\): mw=30 is above the soft limit 20 \(mW\) of t.laser"):
        laser.set_power(30)
    with pytest.raises(InvalidArgument, match=r"power=21 is above the soft limit 20"):
        laser.power = 21
    assert laser.power == 0
    source = lab.connect("t.source")
    assert source.describe()["methods"]["set_level"]["parameters"]["properties"]["volts"]["maximum"] == 3
    with pytest.raises(InvalidArgument, match=r"volts=5"):
        source.set_level(5)
    with pytest.raises(InvalidArgument, match=r"volts=-1 is below the soft limit 0 \(V\)"):
        source.set_level(volts=-1)
    assert source.applied() == [], "a refused call must never reach the instrument"
    source.set_level(0.25)
    assert source.applied() == [0.25]


@pytest.mark.network
def test_a_ramp_reaches_its_target_in_steps_seen_by_subscribers(lab, nameserver, daemon_factory):
    daemon_factory({"t.source": {"class": SOURCE, "ramps": {
        "set_level.volts": {"step": 0.5, "interval": 0.2, "reads": "level"},  # the file's rule wins
        "bias": {"step": 1.0, "interval": 0.01}}}}, nameserver.address)
    source = lab.connect("t.source")
    seen: list[float] = []
    subscription = source.subscribe(lambda prop, value, t: seen.append(value) if prop == "level" else None)
    try:
        wait_for(lambda: seen, timeout=10)  # the current value, before the ramp can coalesce with it
        source.set_level(3.0)  # steps of 0.5 from what `level` reads
        assert source.applied() == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
        assert source.level == 3.0
        wait_for(lambda: seen and seen[-1] == 3.0, timeout=10)
        # the current value first, then the latest of a burst: steps 0.2 s apart arrive one by one
        assert seen[0] == 0.0 and len(seen) >= 3 and seen == sorted(seen)
        assert set(seen[1:]) <= {0.5, 1.0, 1.5, 2.0, 2.5, 3.0}
        source.set_level(3.4)  # within one step: a plain call
        assert source.applied()[-1] == 3.4 and len(source.applied()) == 7
        source.bias = 0.0  # the lab file's ramp on a property setter
        assert source.applied()[-4:] == pytest.approx([3.4 - 3.4 / 4 * k for k in (1, 2, 3, 4)])
    finally:
        subscription.close()


@pytest.mark.network
def test_the_stop_action_ends_a_ramp_midway(lab, nameserver, daemon_factory):
    daemon_factory({"t.source": {"class": SOURCE, "ramps": {
        "set_level.volts": {"step": 0.5, "interval": 0.5, "reads": "level"}}}}, nameserver.address)
    source = lab.connect("t.source", timeout=30)
    outcome: dict[str, object] = {}

    def ramp() -> None:
        try:
            outcome["result"] = source.set_level(10.0)  # 20 steps, about 10 s
        except Exception as err:
            outcome["error"] = err

    runner = threading.Thread(target=ramp)
    runner.start()
    try:
        wait_for(lambda: len(source.applied()) >= 2, timeout=20)
        source.stop()  # served between two steps: the ramp holds the service's mutex only per step
    finally:
        runner.join(30)
    assert not runner.is_alive() and "error" not in outcome
    applied = source.applied()
    assert 2 <= len(applied) < 20 and applied[-1] < 10.0
    assert applied == [0.5 * k for k in range(1, len(applied) + 1)]
    assert source.level == applied[-1]


@pytest.mark.network
def test_an_interlock_reads_the_other_service_and_refuses_naming_the_rule(lab, nameserver, daemon_factory):
    daemon_factory({"t.shutter": {"class": SHUTTER, "args": {"closed": False}}}, nameserver.address)
    interlocks = [{"call": "turn_on", "require": {"service": "t.shutter", "property": "closed", "equals": True},
                   "message": "close the shutter first"},
                  {"call": "wavelength", "require": {"service": "t.gone", "property": "ok", "equals": True}}]
    daemon_factory({"t.laser": {"class": LASER, "interlocks": interlocks}}, nameserver.address)
    laser, shutter = lab.connect("t.laser"), lab.connect("t.shutter")
    with pytest.raises(InterlockError) as info:
        laser.turn_on()
    message = str(info.value)
    assert "interlock 'turn_on requires t.shutter.closed == True'" in message
    assert "t.shutter.closed is False" in message and "close the shutter first" in message
    assert isinstance(info.value, PermissionError) and laser.on is False
    shutter.close()
    laser.turn_on()
    assert laser.on is True
    with pytest.raises(InterlockError, match=r"cannot be checked, reading t.gone.ok failed"):
        laser.wavelength = 1560  # a rule that cannot be checked fails closed
    assert laser.wavelength == 1550
    rules = laser.describe()["methods"]["turn_on"]["interlocks"]
    assert rules[0]["service"] == "t.shutter" and rules[0]["equals"] is True


@pytest.mark.network
def test_an_interlock_on_the_service_s_own_property(lab, nameserver, daemon_factory):
    daemon_factory({"t.gated": "safetyservices:GatedSource"}, nameserver.address)
    gated = lab.connect("t.gated")
    with pytest.raises(InterlockError, match=r"switch_on requires is_armed == True'.*is_armed is False; arm it"):
        gated.switch_on()
    gated.arm()
    gated.switch_on()


@pytest.mark.network
def test_soft_limits_change_at_run_time_within_the_class_range(lab, nameserver, daemon_factory):
    daemon_factory({"t.laser": {"class": LASER, "limits": {"set_power.mw": [0, 20]}}}, nameserver.address)
    laser = lab.connect("t.laser")
    assert laser.soft_limits() == {"set_power.mw": [0, 20]}
    laser.set_soft_limit("set_power.mw", 0, 5)
    assert laser.soft_limits()["set_power.mw"] == [0, 5]
    assert laser.describe()["methods"]["set_power"]["parameters"]["properties"]["mw"]["maximum"] == 5
    with pytest.raises(InvalidArgument, match="above the soft limit 5"):
        laser.set_power(6)
    with pytest.raises(InvalidArgument, match="reaches beyond the class's range 0 to 50"):
        laser.set_soft_limit("set_power.mw", 0, 80)
    with pytest.raises(InvalidArgument, match="did you mean 'set_power'"):
        laser.set_soft_limit("set_powr.mw", 0, 5)
    laser.set_power(5)
    assert laser.power == 5


@pytest.mark.network
def test_a_soft_limit_change_is_audited_with_who_made_it(lab, nameserver, daemon_factory):
    daemon_factory({"t.laser": {"class": LASER, "limits": {"set_power.mw": [0, 20]}}}, nameserver.address)
    laser = lab.connect("t.laser")
    laser.set_soft_limit("set_power.mw", 0, 10)
    with pytest.raises(InvalidArgument):
        laser.set_soft_limit("set_power.mw", 0, 80)
    records = laser.history(n=2)
    assert [(r["kind"], r["member"], r["args"], r["outcome"]) for r in records] == [
        ("call", "set_soft_limit", ["set_power.mw", 0, 10], "ok"),
        ("call", "set_soft_limit", ["set_power.mw", 0, 80], "InvalidArgument")]
    assert records[0]["who"].endswith(f"(pid {os.getpid()}, unverified)")  # user@host without TLS


@pytest.mark.network
def test_soft_limit_change_needs_the_admin_role_under_tls(lab_ca, nameserver_factory, daemon_factory):
    ns = nameserver_factory(security=lab_ca.security("guard-ns", "daemon"))
    daemon_factory({"t.laser": {"class": LASER, "limits": {"set_power.mw": [0, 20]}}}, ns.address,
                   security=lab_ca.security("guard-daemon", "daemon"))
    user = Lab(ns.address, timeout=10, security=lab_ca.security("guard-user", "user")).connect("t.laser")
    with pytest.raises(AccessDenied, match=r"soft limits of t.laser needs the admin role; guard-user .* 'user'"):
        user.set_soft_limit("set_power.mw", 0, 40)
    assert user.soft_limits() == {"set_power.mw": [0, 20]}  # unchanged
    admin = Lab(ns.address, timeout=10, security=lab_ca.security("guard-admin", "admin")).connect("t.laser")
    admin.set_soft_limit("set_power.mw", 0, 40)
    assert user.soft_limits() == {"set_power.mw": [0, 40]}
    user.set_power(30)  # the user works within the admin's new limit
    records = admin.history(n=3)
    assert [(r["member"], r["args"], r["outcome"], r["who"].split(" ")[0]) for r in records] == [
        ("set_soft_limit", ["set_power.mw", 0, 40], "AccessDenied", "guard-user"),
        ("set_soft_limit", ["set_power.mw", 0, 40], "ok", "guard-admin"),
        ("set_power", [30], "ok", "guard-user")]


@pytest.mark.network
def test_bad_rules_stop_the_daemon_from_starting_with_a_guess(nameserver, daemon_factory):
    with pytest.raises(PyroLabError, match=r"no method 'set_powr' \(did you mean 'set_power'\?\)"):
        daemon_factory({"t.laser": {"class": LASER, "limits": {"set_powr.mw": [0, 1]}}}, nameserver.address)


@pytest.mark.network
def test_nan_never_slips_past_a_soft_limit(lab, nameserver, daemon_factory):
    daemon_factory({"t.stage": "pyrolab_jupyter.instruments.sim:Stage"}, nameserver.address)
    stage = lab.connect("t.stage")  # move_to.position_mm: no class range, a soft limit 0 to 100 mm
    with pytest.raises(InvalidArgument, match="position_mm=nan is not a number"):
        stage.move_to(float("nan"))
    with pytest.raises(InvalidArgument, match="position_mm=101 is above the soft limit 100 \\(mm\\)"):
        stage.move_to(101)
    assert stage.position == 0


@pytest.mark.network
def test_an_interlock_follows_the_other_service_when_it_moves_and_fails_closed_while_it_is_gone(
        lab, nameserver, daemon_factory):
    shutter_spec = {"t.shutter": {"class": SHUTTER, "args": {"closed": True}}}
    first = daemon_factory(shutter_spec, nameserver.address)
    interlock = {"call": "turn_on", "require": {"service": "t.shutter", "property": "closed", "equals": True}}
    daemon_factory({"t.laser": {"class": LASER, "interlocks": [interlock]}}, nameserver.address)
    laser = lab.connect("t.laser")
    laser.turn_on()  # the daemon now knows where t.shutter is
    first.stop()
    with pytest.raises(InterlockError, match="cannot be checked"):
        laser.turn_on()
    second = daemon_factory(shutter_spec, nameserver.address)  # back, on another port
    assert second.uris["t.shutter"] != first.uris["t.shutter"]
    laser.turn_on()
    assert laser.on is True
