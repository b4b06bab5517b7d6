"""Simulated instruments: a laser, a power meter, a motorised stage, a scope and a camera.

They behave enough like the real thing to build and test notebooks, panels and
lab files without hardware, and they are examples of how to write a service.
Each is constructible with no arguments; limits, units and choices live in the
annotations, so the hosting daemon refuses a bad argument before the method
runs and a generated panel shows sliders with the right bounds.

``Laser``
    Tunable source, 1500–1630 nm, 0–50 mW. ``emitted_power`` is what leaves the
    fibre: 0 when off, half of ``power`` in pulsed mode (50 % duty cycle).
    ``stop()`` switches the output off. Each member declares what it may
    change (``expose(changes=...)``), so subscribers re-read just that.
``PowerMeter``
    Reads ``coupling × laser.emitted_power`` plus Gaussian noise. ``laser`` is
    any object with an ``emitted_power`` attribute: a ``Laser`` in the same
    process, or a ``RemoteService`` proxy of one hosted elsewhere. Its
    ``wavelength`` setting is the calibration wavelength: a mismatch with the
    laser's wavelength skews the reading by 0.2 % per nm.
``Stage``
    Linear stage with soft limits. A move takes ``distance / velocity`` of real
    time; the position is interpolated from a monotonic clock when read, so
    no thread runs in the background. ``move_to(x, wait=False)`` returns at once;
    ``position`` and ``moving`` are polled by the daemon while someone
    subscribes, and ``stop()`` (the stop action) halts a move.
``Scope``
    Oscilloscope (``stop()`` freezes it on its last capture) whose channels see sines of ``signal_hz`` (channel k: amplitude
    1/k V, lagging channel 1 by (k-1)·90°) plus noise. Channel 1 is the trigger
    source; the trigger point (rising edge through ``trigger_level``) sits at
    the middle of the record, where ``time_axis()`` is 0.
``Camera``
    16-bit camera looking at a Gaussian spot in the middle of its sensor.
    Counts grow with the exposure (and saturate), with shot and read noise;
    ``snap()`` returns the ``roi`` only.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, ClassVar, Literal

import numpy as np

from pyrolab_jupyter.core.errors import InvalidArgument
from pyrolab_jupyter.core.service import Range, Service, Unit, expose

__all__ = ["Camera", "Laser", "PowerMeter", "Scope", "Stage"]

MAX_POWER_MW = 50.0
WAVELENGTH_RANGE_NM = (1500.0, 1630.0)

PowerMW = Annotated[float, Range(0, MAX_POWER_MW), Unit("mW")]
LaserNM = Annotated[float, Range(*WAVELENGTH_RANGE_NM), Unit("nm")]
MeterNM = Annotated[float, Range(800, 1700), Unit("nm")]
Millimetres = Annotated[float, Unit("mm")]
Speed = Annotated[float, Range(0.01, 500), Unit("mm/s")]
Seconds = Annotated[float, Range(0, 3600), Unit("s")]
SampleRate = Annotated[float, Range(1e3, 1e10), Unit("Hz")]
Points = Annotated[int, Range(10, 1_000_000)]
Volts = Annotated[float, Range(-5, 5), Unit("V")]
ExposureMS = Annotated[float, Range(0.01, 10_000), Unit("ms")]
Pixel = Annotated[int, Range(0, None)]
Span = Annotated[int, Range(1, None)]
LaserMode = Literal["cw", "pulsed"]
TriggerMode = Literal["auto", "normal", "single"]


def _check(name: str, value: float, low: float, high: float, unit: str = "") -> float:
    """Constructor arguments get the same kind of message the daemon gives calls."""
    if not low <= value <= high:
        raise InvalidArgument(f"{name}={value!r} is outside {low:g} to {high:g} {unit}".rstrip())
    return float(value)


class Laser(Service):
    """A simulated tunable laser (C and L band) with an output switch and a pulsed mode."""

    PULSED_DUTY_CYCLE: ClassVar[float] = 0.5

    def __init__(self, wavelength_nm: float = 1550.0, max_power_mw: float = MAX_POWER_MW) -> None:
        self._wavelength = _check("wavelength_nm", wavelength_nm, *WAVELENGTH_RANGE_NM, "nm")
        self._max_power = _check("max_power_mw", max_power_mw, 0.0, MAX_POWER_MW, "mW")
        if self._max_power < MAX_POWER_MW:  # shown in the description; the daemon refuses above it
            self.narrow("set_power.mw", 0.0, self._max_power)
            self.narrow("power", 0.0, self._max_power)
        self._power = 0.0
        self._on = False
        self._mode: LaserMode = "cw"

    def _apply_power(self, mw: float) -> None:
        # The annotation carries the model's ceiling; a lower per-instance
        # max_power_mw can only be checked here.
        self._power = _check("mw", mw, 0.0, self._max_power, "mW")

    @expose(changes=["power", "emitted_power"])
    @property
    def power(self) -> PowerMW:
        """Power setpoint (what it emits when on, in cw mode)."""
        return self._power

    @power.setter
    def power(self, mw: PowerMW) -> None:
        self._apply_power(mw)

    @expose
    @property
    def max_power(self) -> Annotated[float, Unit("mW")]:
        """Highest power setpoint this laser accepts."""
        return self._max_power

    @expose(changes=["wavelength"])
    @property
    def wavelength(self) -> LaserNM:
        """Emission wavelength."""
        return self._wavelength

    @wavelength.setter
    def wavelength(self, nm: LaserNM) -> None:
        self._wavelength = float(nm)

    @expose(changes=["on", "emitted_power"])
    @property
    def on(self) -> bool:
        """Whether the output is switched on."""
        return self._on

    @on.setter
    def on(self, value: bool) -> None:
        self._on = bool(value)

    @expose(changes=["mode", "emitted_power"])
    @property
    def mode(self) -> LaserMode:
        """Continuous wave (``"cw"``) or pulsed at 50 % duty cycle (``"pulsed"``)."""
        return self._mode

    @mode.setter
    def mode(self, value: LaserMode) -> None:
        self._mode = value

    @expose
    @property
    def emitted_power(self) -> Annotated[float, Unit("mW")]:
        """Average power leaving the laser: 0 when off, halved in pulsed mode."""
        if not self._on:
            return 0.0
        return self._power * (self.PULSED_DUTY_CYCLE if self._mode == "pulsed" else 1.0)

    @expose(changes=["power", "emitted_power"])
    def set_power(self, mw: PowerMW) -> None:
        """Set the power setpoint."""
        self._apply_power(mw)

    @expose(changes=["on", "emitted_power"])
    def turn_on(self) -> None:
        """Switch the output on."""
        self._on = True

    @expose(changes=["on", "emitted_power"])
    def turn_off(self) -> None:
        """Switch the output off."""
        self._on = False

    @expose(stop=True, changes=["on", "emitted_power"])
    def stop(self) -> None:
        """Stop: switch the output off (safe to call at any time, by anyone)."""
        self._on = False


class PowerMeter(Service):
    """A simulated optical power meter reading a laser through a lossy, noisy link."""

    CALIBRATION_SLOPE_PER_NM: ClassVar[float] = 0.002

    def __init__(
        self,
        laser: object | None = None,
        coupling: float = 0.5,
        noise_mw: float = 0.01,
        seed: int | None = None,
    ) -> None:
        #: The light source: anything with an ``emitted_power`` attribute (mW) and,
        #: optionally, ``wavelength`` (nm): a Laser or a RemoteService of one.
        #: Not exposed; set it in Python (``meter.laser = laser``) on the hosting side.
        self.laser = laser
        self._coupling = _check("coupling", coupling, 0.0, 1.0)
        self._noise = _check("noise_mw", noise_mw, 0.0, float("inf"), "mW")
        self._wavelength = 1550.0
        self._rng = np.random.default_rng(seed)

    def _true_power(self) -> float:
        if self.laser is None:
            return 0.0
        emitted = float(self.laser.emitted_power)  # type: ignore[attr-defined]
        source_nm = float(getattr(self.laser, "wavelength", self._wavelength))
        skew = 1.0 + self.CALIBRATION_SLOPE_PER_NM * (source_nm - self._wavelength)
        return self._coupling * emitted * skew

    @expose(changes=["wavelength"])
    @property
    def wavelength(self) -> MeterNM:
        """Calibration wavelength: set it to the light's wavelength for a true reading."""
        return self._wavelength

    @wavelength.setter
    def wavelength(self, nm: MeterNM) -> None:
        self._wavelength = float(nm)

    @expose(changes=["coupling"])
    @property
    def coupling(self) -> Annotated[float, Range(0, 1)]:
        """Fraction of the laser's emitted power that reaches the detector."""
        return self._coupling

    @coupling.setter
    def coupling(self, fraction: Annotated[float, Range(0, 1)]) -> None:
        self._coupling = float(fraction)

    @expose(readonly=True)
    def read(self) -> Annotated[float, Unit("mW")]:
        """One power reading."""
        return self._true_power() + float(self._rng.normal(0.0, self._noise))

    @expose(readonly=True)
    def read_many(self, n: Annotated[int, Range(1, 1_000_000)] = 100) -> Annotated[np.ndarray, Unit("mW")]:
        """``n`` readings taken in a burst, as a float array."""
        return self._true_power() + self._rng.normal(0.0, self._noise, size=int(n))


_MOTION = ["position", "moving", "homed"]  # what a stage's moves may change


class Stage(Service):
    """A simulated linear stage with soft limits; moves take real time."""

    # The motion state is guarded by a condition, so the daemon may serve
    # `position` and `stop()` while another call sits in `wait()`.
    thread_safe = True

    def __init__(self, min_mm: float = 0.0, max_mm: float = 100.0, velocity_mm_s: float = 10.0) -> None:
        if not min_mm < max_mm:
            raise InvalidArgument(f"min_mm={min_mm!r} must be below max_mm={max_mm!r}")
        self._limits = (float(min_mm), float(max_mm))
        self.narrow("move_to.position_mm", *self._limits)  # move_by can only be checked in _start_move
        self._velocity = _check("velocity_mm_s", velocity_mm_s, 0.01, 500.0, "mm/s")
        self._cond = threading.Condition()
        start = min(max(0.0, self._limits[0]), self._limits[1])
        # The current (or last) move: from `_from` at `_t0` to `_to` at `_t1`.
        self._from = self._to = start
        self._t0 = self._t1 = 0.0
        self._homed_at: float | None = None  # end time of the homing move

    def _position_at(self, now: float) -> float:
        if now >= self._t1:
            return self._to
        return self._from + (self._to - self._from) * (now - self._t0) / (self._t1 - self._t0)

    def _start_move(self, target: float, wait: bool, homing: bool = False) -> None:
        low, high = self._limits
        if not low <= target <= high:
            side, bound = ("lower", low) if target < low else ("upper", high)
            raise InvalidArgument(
                f"position_mm={target:g} mm is beyond the {side} soft limit {bound:g} mm"
                f" (limits {low:g} to {high:g} mm)"
            )
        with self._cond:
            now = time.monotonic()
            start = self._position_at(now)
            duration = abs(target - start) / self._velocity
            self._from, self._to, self._t0, self._t1 = start, float(target), now, now + duration
            self._homed_at = self._t1 if homing else None
            self._cond.notify_all()
        self.notify("moving", duration > 0)
        self.notify("position", start)
        if wait:
            self.wait(timeout_s=duration + 1.0)

    @expose(poll=0.2)
    @property
    def position(self) -> Millimetres:
        """Current position (interpolated while moving)."""
        with self._cond:
            return self._position_at(time.monotonic())

    @expose(poll=0.2)
    @property
    def moving(self) -> bool:
        """Whether a move is under way."""
        return time.monotonic() < self._t1

    @expose
    @property
    def homed(self) -> bool:
        """Whether ``home()`` has completed since the last other move or stop."""
        return self._homed_at is not None and time.monotonic() >= self._homed_at

    @expose
    @property
    def limits(self) -> tuple[Millimetres, Millimetres]:
        """Soft limits ``(min, max)``; moves outside them are refused."""
        return self._limits

    @expose(changes=["velocity"])
    @property
    def velocity(self) -> Speed:
        """Speed of the next move (a move under way keeps its speed)."""
        return self._velocity

    @velocity.setter
    def velocity(self, mm_s: Speed) -> None:
        self._velocity = _check("mm_s", mm_s, 0.01, 500.0, "mm/s")  # 0 would never arrive

    @expose(changes=_MOTION)
    def move_to(self, position_mm: Millimetres, wait: bool = True) -> None:
        """Move to an absolute position within the soft limits; ``wait=False`` returns at once."""
        self._start_move(float(position_mm), wait)

    @expose(changes=_MOTION)
    def move_by(self, delta_mm: Millimetres, wait: bool = True) -> None:
        """Move relative to the current position."""
        self._start_move(self.position + float(delta_mm), wait)

    @expose(changes=_MOTION)
    def home(self, wait: bool = True) -> None:
        """Move to the lower limit and mark the stage as homed when it gets there."""
        self._start_move(self._limits[0], wait, homing=True)

    @expose(stop=True, changes=_MOTION)
    def stop(self) -> None:
        """Stop where the stage is now (the stop action: anyone may call it, locked or not)."""
        with self._cond:
            now = time.monotonic()
            if now < self._t1:
                self._from = self._to = self._position_at(now)
                self._t0 = self._t1 = now
                if self._homed_at is not None and now < self._homed_at:
                    self._homed_at = None
            self._cond.notify_all()
            final = self._to
        self.notify("moving", False)
        self.notify("position", final)

    @expose(changes=_MOTION)
    def wait(self, timeout_s: Seconds = 60.0) -> Millimetres:
        """Block until the current move ends and return the final position.

        Raises ``TimeoutError`` if the stage is still moving after ``timeout_s``.
        """
        deadline = time.monotonic() + float(timeout_s)
        with self._cond:
            while (now := time.monotonic()) < self._t1:
                if now >= deadline:
                    raise TimeoutError(
                        f"stage still moving after {timeout_s:g} s (at {self._position_at(now):.3f} mm,"
                        f" heading for {self._to:g} mm)"
                    )
                self._cond.wait(min(self._t1, deadline) - now)
            final = self._to
        self.notify("moving", False)
        self.notify("position", final)
        return final


class Scope(Service):
    """A simulated oscilloscope: triggered traces of noisy sines."""

    def __init__(
        self,
        channels: int = 2,
        sample_rate_hz: float = 1e6,
        points: int = 1000,
        seed: int | None = None,
        signal_hz: float = 10e3,
        noise_v: float = 0.02,
    ) -> None:
        self._channels = int(_check("channels", channels, 1, 16))
        self._rate = _check("sample_rate_hz", sample_rate_hz, 1e3, 1e10, "Hz")
        self._points = int(_check("points", points, 10, 1_000_000))
        self._signal_hz = float(signal_hz)
        self._noise = float(noise_v)
        self._level = 0.0
        self._mode: TriggerMode = "auto"
        self._held: np.ndarray | None = None  # the capture kept in single mode
        self._last: np.ndarray | None = None  # the latest capture, which stop() holds
        self._rng = np.random.default_rng(seed)

    @expose
    @property
    def channels(self) -> int:
        """Number of input channels (numbered from 1)."""
        return self._channels

    @expose(changes=["sample_rate", "timebase"])
    @property
    def sample_rate(self) -> SampleRate:
        """Samples per second."""
        return self._rate

    @sample_rate.setter
    def sample_rate(self, hz: SampleRate) -> None:
        self._rate, self._held = float(hz), None

    @expose
    @property
    def timebase(self) -> Annotated[float, Unit("s/div")]:
        """Horizontal scale over 10 divisions, from ``points`` and ``sample_rate``."""
        return self._points / self._rate / 10

    @expose(changes=["points", "timebase"])
    @property
    def points(self) -> Points:
        """Samples per trace."""
        return self._points

    @points.setter
    def points(self, n: Points) -> None:
        self._points, self._held = int(n), None

    @expose(changes=["trigger_level"])
    @property
    def trigger_level(self) -> Volts:
        """Channel 1 crosses this level, rising, at time 0."""
        return self._level

    @trigger_level.setter
    def trigger_level(self, volts: Volts) -> None:
        self._level, self._held = float(volts), None

    @expose(changes=["trigger_mode"])
    @property
    def trigger_mode(self) -> TriggerMode:
        """``auto`` runs untriggered when there is no edge; ``normal`` needs one;
        ``single`` keeps its first capture until ``arm()``."""
        return self._mode

    @trigger_mode.setter
    def trigger_mode(self, mode: TriggerMode) -> None:
        self._mode, self._held = mode, None

    @expose(changes=[])
    def arm(self) -> None:
        """Drop the held capture so the next ``acquire()`` in single mode captures anew."""
        self._held = None

    @expose(stop=True, changes=["trigger_mode"])
    def stop(self) -> None:
        """Stop acquiring: switch to single mode and hold the last capture until ``arm()``."""
        self._mode, self._held = "single", self._last

    @expose(readonly=True)
    def time_axis(self) -> Annotated[np.ndarray, Unit("s")]:
        """Sample times relative to the trigger point (0 at the middle of the record)."""
        return (np.arange(self._points) - self._points // 2) / self._rate

    def _capture(self) -> np.ndarray:
        if abs(self._level) < 1.0:  # channel 1 has amplitude 1 V
            phase = float(np.arcsin(self._level))  # rising crossing of the level at t = 0
        elif self._mode == "auto":
            phase = float(self._rng.uniform(0, 2 * np.pi))
        else:
            raise TimeoutError(f"no trigger: level {self._level:g} V is outside channel 1's ±1 V swing")
        t = self.time_axis()
        k = np.arange(1, self._channels + 1)[:, None]
        clean = np.sin(2 * np.pi * self._signal_hz * t + phase - (k - 1) * np.pi / 2) / k
        self._last = clean + self._rng.normal(0.0, self._noise, size=clean.shape)
        return self._last

    @expose(readonly=True)
    def acquire(self, channel: Annotated[int, Range(1, 16)] = 1) -> Annotated[np.ndarray, Unit("V")]:
        """One triggered trace of ``channel`` (``points`` samples, volts)."""
        if not 1 <= channel <= self._channels:
            raise InvalidArgument(f"channel={channel!r}: this scope has channels 1 to {self._channels}")
        if self._mode == "single":
            if self._held is None:
                self._held = self._capture()
            return np.array(self._held[channel - 1])
        return np.asarray(self._capture()[channel - 1])


class Camera(Service):
    """A simulated 16-bit camera looking at a Gaussian spot."""

    PEAK_RATE: ClassVar[float] = 500.0  # counts per ms at the spot's centre
    DARK_RATE: ClassVar[float] = 0.5  # counts per ms per pixel
    BIAS: ClassVar[float] = 100.0
    READ_NOISE: ClassVar[float] = 5.0

    def __init__(self, width: int = 640, height: int = 480, seed: int | None = None) -> None:
        self._width = int(_check("width", width, 1, 100_000))
        self._height = int(_check("height", height, 1, 100_000))
        self._roi = (0, 0, self._width, self._height)
        self._exposure = 10.0
        self._sigma = max(2.0, min(self._width, self._height) / 20)
        self._rng = np.random.default_rng(seed)

    @expose
    @property
    def sensor_shape(self) -> tuple[int, int]:
        """Full sensor size as ``(height, width)``, the shape of a full-frame ``snap()``."""
        return (self._height, self._width)

    @expose(changes=["exposure_ms"])
    @property
    def exposure_ms(self) -> ExposureMS:
        """Exposure time; counts grow with it and saturate at 65535."""
        return self._exposure

    @exposure_ms.setter
    def exposure_ms(self, ms: ExposureMS) -> None:
        self._exposure = float(ms)

    @expose(changes=["roi"])
    @property
    def roi(self) -> tuple[Pixel, Pixel, Span, Span]:
        """Region of interest ``(x, y, width, height)`` in pixels; must fit on the sensor."""
        return self._roi

    @roi.setter
    def roi(self, value: tuple[Pixel, Pixel, Span, Span]) -> None:
        x, y, w, h = (int(v) for v in value)
        if min(x, y) < 0 or min(w, h) < 1 or x + w > self._width or y + h > self._height:
            raise InvalidArgument(
                f"roi={(x, y, w, h)!r} does not fit the {self._width}x{self._height} sensor"
                " (need x, y >= 0; width, height >= 1; x + width, y + height within the sensor)"
            )
        self._roi = (x, y, w, h)

    @expose(changes=["roi"])
    def reset_roi(self) -> None:
        """Use the full sensor again."""
        self._roi = (0, 0, self._width, self._height)

    @expose(readonly=True)
    def snap(self) -> Annotated[np.ndarray, Unit("counts")]:
        """One frame of the ROI: a 2-D ``uint16`` array of shape ``(roi height, roi width)``."""
        x, y, w, h = self._roi
        yy, xx = np.ogrid[y : y + h, x : x + w]
        cx, cy = (self._width - 1) / 2, (self._height - 1) / 2
        spot = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * self._sigma**2))
        expected = (self.PEAK_RATE * spot + self.DARK_RATE) * self._exposure
        frame = self._rng.poisson(expected) + self._rng.normal(self.BIAS, self.READ_NOISE, size=(h, w))
        return np.clip(np.rint(frame), 0, 65535).astype(np.uint16)
