"""The simulated instruments, called in-process and validated through their schema."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from pyrolab_jupyter.core.errors import InvalidArgument
from pyrolab_jupyter.core.service import schema_of
from pyrolab_jupyter.instruments.sim import Camera, Laser, PowerMeter, Scope, Stage

ALL = [Laser, PowerMeter, Stage, Scope, Camera]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_description_is_plain_json_with_docs(cls):
    description = cls().describe()
    assert json.loads(json.dumps(description)) == description
    assert description["class"] == f"pyrolab_jupyter.instruments.sim:{cls.__name__}"
    members = {**description["properties"], **description["methods"]}
    assert members
    undocumented = [name for name, member in members.items() if not member["description"]]
    assert undocumented == []


@pytest.mark.parametrize(
    ("cls", "prop", "unit", "minimum", "maximum"),
    [
        (Laser, "power", "mW", 0, 50),
        (Laser, "wavelength", "nm", 1500, 1630),
        (PowerMeter, "wavelength", "nm", 800, 1700),
        (PowerMeter, "coupling", None, 0, 1),
        (Stage, "velocity", "mm/s", 0.01, 500),
        (Scope, "sample_rate", "Hz", 1e3, 1e10),
        (Scope, "points", None, 10, 1_000_000),
        (Scope, "trigger_level", "V", -5, 5),
        (Camera, "exposure_ms", "ms", 0.01, 10_000),
    ],
)
def test_property_limits_and_units(cls, prop, unit, minimum, maximum):
    entry = cls().describe()["properties"][prop]
    assert entry["readonly"] is False
    assert entry["schema"].get("x-unit") == unit
    assert entry["schema"]["minimum"] == minimum
    assert entry["schema"]["maximum"] == maximum


def test_choices_and_readonly_members():
    laser = Laser().describe()
    assert laser["properties"]["mode"]["schema"]["enum"] == ["cw", "pulsed"]
    assert laser["properties"]["emitted_power"]["readonly"] is True
    scope = Scope().describe()
    assert scope["properties"]["trigger_mode"]["schema"]["enum"] == ["auto", "normal", "single"]
    stage = Stage().describe()
    readonly_props = {n for n, p in stage["properties"].items() if p["readonly"]}
    assert readonly_props == {"position", "moving", "homed", "limits"}
    readonly = {
        cls.__name__: {n for n, m in cls().describe()["methods"].items() if m["readonly"]} for cls in ALL
    }
    assert readonly == {
        "Laser": set(),
        "PowerMeter": {"read", "read_many"},
        "Stage": set(),
        "Scope": {"acquire", "time_axis"},
        "Camera": {"snap"},
    }
    assert Camera().describe()["methods"]["snap"]["returns"]["x-ndarray"] is True


def test_laser_power_above_max_is_refused_by_validation():
    validator = schema_of(Laser).methods["set_power"]
    with pytest.raises(InvalidArgument, match=r"mw=99 is above the maximum 50 \(mW\)"):
        validator.validate((99,), {})
    with pytest.raises(InvalidArgument, match="below the minimum"):
        validator.validate((-1,), {})
    assert validator.validate((3,), {}) == ((), {"mw": 3.0})
    with pytest.raises(InvalidArgument, match="wavelength"):
        schema_of(Laser).properties["wavelength"].validate(1700)
    with pytest.raises(InvalidArgument, match="not one of"):
        schema_of(Laser).properties["mode"].validate("burst")


def test_laser_emits_only_when_on_and_halves_when_pulsed():
    laser = Laser(wavelength_nm=1560)
    laser.set_power(10)
    assert laser.power == 10 and laser.emitted_power == 0
    laser.turn_on()
    assert laser.on is True and laser.emitted_power == 10
    laser.mode = "pulsed"
    assert laser.emitted_power == 5
    laser.turn_off()
    assert laser.emitted_power == 0
    assert laser.wavelength == 1560


def test_laser_instance_limit_below_model_limit():
    laser = Laser(max_power_mw=20)
    assert laser.max_power == 20
    with pytest.raises(InvalidArgument, match="mw=30"):
        laser.set_power(30)
    with pytest.raises(InvalidArgument, match="max_power_mw"):
        Laser(max_power_mw=80)
    with pytest.raises(InvalidArgument, match="wavelength_nm"):
        Laser(wavelength_nm=900)


def test_power_meter_follows_the_laser():
    laser = Laser()
    meter = PowerMeter(laser, coupling=0.5, noise_mw=0.001, seed=1)
    assert abs(meter.read()) < 0.01  # laser off: only noise
    laser.set_power(20)
    laser.turn_on()
    assert meter.read() == pytest.approx(10.0, abs=0.01)
    meter.coupling = 0.25
    samples = meter.read_many(500)
    assert isinstance(samples, np.ndarray) and samples.shape == (500,)
    assert samples.mean() == pytest.approx(5.0, abs=0.001)
    assert 0.0005 < samples.std() < 0.002
    laser.set_power(40)
    assert meter.read() == pytest.approx(10.0, abs=0.01)


def test_power_meter_calibration_wavelength_and_seeds():
    laser = Laser(wavelength_nm=1550)
    laser.set_power(10)
    laser.turn_on()
    meter = PowerMeter(laser, coupling=1.0, noise_mw=0.0)
    assert meter.read() == pytest.approx(10.0)
    meter.wavelength = 1500  # calibrated 50 nm off: 10 % high
    assert meter.read() == pytest.approx(11.0)
    a = PowerMeter(seed=7).read_many(10)
    b = PowerMeter(seed=7).read_many(10)
    np.testing.assert_array_equal(a, b)


def test_power_meter_reads_any_object_with_emitted_power():
    class Source:
        emitted_power = 8.0

    assert PowerMeter(Source(), coupling=0.5, noise_mw=0).read() == 4.0


def test_stage_move_takes_time_and_wait_ends_it():
    stage = Stage(velocity_mm_s=20)
    assert stage.position == 0 and stage.limits == (0.0, 100.0)
    t0 = time.monotonic()
    stage.move_to(20, wait=False)  # 20 mm at 20 mm/s: one second
    assert stage.moving is True  # returned while the move runs
    assert 0 <= stage.position < 20
    assert stage.wait(timeout_s=10) == 20
    assert time.monotonic() - t0 >= 0.99  # the move took its real time
    assert stage.moving is False and stage.position == 20
    stage.move_by(-5)  # waits by default
    assert stage.position == 15 and stage.moving is False


def test_stage_position_is_interpolated():
    stage = Stage(velocity_mm_s=50)
    start = time.monotonic()
    stage.move_to(10, wait=False)  # 0.2 s
    time.sleep(0.1)
    before = time.monotonic() - start
    position = stage.position
    after = time.monotonic() - start
    assert 50 * before - 0.1 <= position <= min(10, 50 * after + 0.1)
    stage.stop()
    stopped = stage.position
    assert stage.moving is False and position <= stopped < 10
    time.sleep(0.02)
    assert stage.position == stopped


def test_stage_wait_times_out():
    stage = Stage(velocity_mm_s=10)
    stage.move_to(5, wait=False)  # 0.5 s
    with pytest.raises(TimeoutError, match="still moving after 0.05 s"):
        stage.wait(timeout_s=0.05)
    stage.stop()
    assert stage.wait(timeout_s=0.1) == stage.position


def test_stage_soft_limits():
    stage = Stage(min_mm=-10, max_mm=10, velocity_mm_s=500)
    with pytest.raises(ValueError, match="upper soft limit 10 mm"):
        stage.move_to(11)
    with pytest.raises(ValueError, match="lower soft limit -10 mm"):
        stage.move_by(-10.5)
    assert stage.position == 0 and stage.moving is False
    stage.move_to(10)
    assert stage.position == 10
    with pytest.raises(InvalidArgument, match="velocity"):
        schema_of(Stage).properties["velocity"].validate(0)
    with pytest.raises(InvalidArgument):
        Stage(min_mm=5, max_mm=5)


def test_stage_home():
    stage = Stage(min_mm=-2, max_mm=2, velocity_mm_s=100)
    assert stage.homed is False
    stage.home(wait=False)
    assert stage.homed is False
    stage.wait(timeout_s=1)
    assert stage.homed is True and stage.position == -2
    stage.move_to(1)
    assert stage.homed is False


def test_stage_notifies_move_start_and_end():
    stage = Stage(velocity_mm_s=500)
    seen = []
    stage._pyrolab_publish = lambda name, value: seen.append((name, value))
    stage.move_to(5)
    assert seen == [("moving", True), ("position", 0.0), ("moving", False), ("position", 5.0)]


def test_scope_trace_is_triggered():
    scope = Scope(points=2000, sample_rate_hz=1e6, seed=3)
    scope.trigger_level = 0.5
    t = scope.time_axis()
    trace = scope.acquire(1)
    assert trace.shape == t.shape == (2000,)
    assert t[1000] == 0 and t[1] - t[0] == pytest.approx(1e-6)
    assert trace[1000] == pytest.approx(0.5, abs=0.1)
    assert trace[1020] > trace[980]  # rising edge
    second = scope.acquire(2)
    assert np.abs(second).max() < 0.6  # channel 2 has half the amplitude
    scope.points = 300
    assert scope.acquire().shape == (300,) and scope.time_axis().shape == (300,)
    assert scope.timebase == pytest.approx(30e-6)


def test_scope_trigger_modes():
    scope = Scope(seed=0)
    scope.trigger_level = 2.0  # above the 1 V swing
    assert scope.acquire().shape == (1000,)  # auto runs free
    scope.trigger_mode = "normal"
    with pytest.raises(TimeoutError, match="no trigger"):
        scope.acquire()
    scope.trigger_level = 0.0
    scope.trigger_mode = "single"
    first = scope.acquire()
    np.testing.assert_array_equal(scope.acquire(), first)
    scope.arm()
    assert not np.array_equal(scope.acquire(), first)
    with pytest.raises(ValueError, match="channels 1 to 2"):
        scope.acquire(3)
    with pytest.raises(InvalidArgument):
        schema_of(Scope).methods["acquire"].validate((0,), {})


def test_scope_is_deterministic_with_a_seed():
    np.testing.assert_array_equal(Scope(seed=5).acquire(), Scope(seed=5).acquire())


def test_camera_snap_is_2d_and_follows_roi():
    camera = Camera(seed=2)
    assert camera.sensor_shape == (480, 640)
    frame = camera.snap()
    assert frame.dtype == np.uint16 and frame.shape == (480, 640)
    assert np.unravel_index(frame.argmax(), frame.shape) == pytest.approx((240, 320), abs=3)
    camera.roi = (300, 200, 50, 40)
    roi_frame = camera.snap()
    assert roi_frame.shape == (40, 50)
    assert roi_frame.mean() > frame.mean()  # the ROI sits on the spot
    with pytest.raises(ValueError, match="does not fit the 640x480 sensor"):
        camera.roi = (600, 0, 100, 10)
    assert camera.roi == (300, 200, 50, 40)
    with pytest.raises(InvalidArgument):
        schema_of(Camera).properties["roi"].validate((0, 0, 0, 10))
    camera.reset_roi()
    assert camera.snap().shape == (480, 640)


def test_camera_counts_scale_with_exposure_and_saturate():
    camera = Camera(width=64, height=48, seed=4)
    camera.exposure_ms = 1
    short = camera.snap().astype(float)
    camera.exposure_ms = 10
    long = camera.snap().astype(float)
    peak_short, peak_long = short.max() - 100, long.max() - 100
    assert 7 < peak_long / peak_short < 13
    camera.exposure_ms = 1000
    assert camera.snap().max() == 65535
    np.testing.assert_array_equal(Camera(seed=9).snap(), Camera(seed=9).snap())


def test_stage_laser_and_scope_have_a_stop_action_and_declare_what_changes():
    assert {cls.__name__: schema_of(cls).stop_method for cls in (Stage, Laser, Scope)} == {
        "Stage": "stop", "Laser": "stop", "Scope": "stop"}
    stage = Stage().describe()
    assert stage["properties"]["position"]["poll"] == 0.2 and stage["properties"]["moving"]["poll"] == 0.2
    assert set(stage["methods"]["move_to"]["changes"]) == {"position", "moving", "homed"}
    assert Laser().describe()["properties"]["on"]["changes"] == ["on", "emitted_power"]
    laser = Laser()
    laser.set_power(5.0)
    laser.turn_on()
    laser.stop()
    assert laser.emitted_power == 0.0
    scope = Scope(seed=1)
    trace = scope.acquire()
    scope.stop()
    assert scope.trigger_mode == "single" and np.array_equal(scope.acquire(), trace)  # frozen on the last capture


def test_stage_stop_announces_the_end_of_the_move():
    stage = Stage(velocity_mm_s=1.0)
    heard: list[tuple[str, object]] = []
    stage._pyrolab_publish = lambda prop, value: heard.append((prop, value))
    stage.move_to(50.0, wait=False)
    stage.stop()
    assert not stage.moving and heard[-2:] == [("moving", False), ("position", stage.position)]
