"""Services used by the integration tests; imported by daemon child processes too."""

from __future__ import annotations

import enum
import threading
import time
from typing import Annotated, Any, Literal

import numpy as np

from pyrolab_jupyter import Range, Service, Unit, expose


class DeviceFault(Exception):
    """An exception type the client cannot import."""


class Mode(enum.Enum):
    CW = "cw"
    PULSED = "pulsed"


class Dummy(Service):
    """A test instrument."""

    def __init__(self, power: float = 1.0) -> None:
        self._power = power
        self._mode = Mode.CW
        self.active = 0
        self.max_active = 0
        self._count = threading.Lock()

    @expose
    def set_power(self, mw: Annotated[float, Range(0, 50), Unit("mW")]) -> None:
        """Set the output power."""
        self._power = mw

    @expose
    @property
    def power(self) -> Annotated[float, Unit("mW")]:
        """Output power."""
        return self._power

    @power.setter
    def power(self, mw: Annotated[float, Range(0, 50)]) -> None:
        self._power = mw

    @expose
    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, value: Mode) -> None:
        self._mode = value

    @expose
    def choose(self, kind: Literal["a", "b"]) -> str:
        return kind

    @expose(readonly=True)
    def echo(self, value: Any) -> Any:
        """Return the value as it arrived."""
        return value

    @expose(readonly=True)
    def dtype_of(self, value: np.ndarray) -> str:
        return f"{value.dtype.str} {value.shape} {'F' if value.flags.f_contiguous and value.ndim > 1 else 'C'}"

    @expose
    def sleep(self, seconds: float) -> float:
        """Hold the service busy; reports how many calls ran at once."""
        with self._count:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(seconds)
        with self._count:
            self.active -= 1
        return seconds

    @expose
    def overlap(self) -> int:
        return self.max_active

    @expose
    def fail_builtin(self) -> None:
        raise KeyError("no such channel")

    @expose
    def fail_custom(self) -> None:
        raise DeviceFault("interlock open")

    @expose
    def announce(self, value: float) -> None:
        self.notify("power", value)


class Sensors(Service):
    """Properties that count their reads, one of which fails: for read_properties and completion tests."""

    def __init__(self) -> None:
        self._reads = 0
        self._lock = threading.Lock()

    def _count(self) -> None:
        with self._lock:
            self._reads += 1

    @expose
    @property
    def good(self) -> Annotated[float, Range(0, 10), Unit("V")]:
        """A sensor that works."""
        self._count()
        return 1.5

    @expose
    @property
    def broken(self) -> float:
        """A sensor whose cable is unplugged."""
        self._count()
        raise DeviceFault("sensor unplugged")

    @expose
    @property
    def missing(self) -> float:
        """A sensor whose driver raises a builtin error."""
        self._count()
        raise KeyError("channel 7")

    @expose(readonly=True)
    def reads(self) -> int:
        """How many property reads the service has served."""
        return self._reads


class Motor(Service):
    """A slow, non-thread-safe motor with a stop action: moving holds the service, stop() reaches it anyway."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._position = 0.0
        self.stops = 0

    @expose
    @property
    def position(self) -> Annotated[float, Unit("mm")]:
        """Where the motor is."""
        return self._position

    @expose(changes=["position"])
    def run(self, seconds: float) -> float:
        """Move for ``seconds`` unless stopped (also by a halt() that came first); returns the position reached."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stop.wait(0.02):
            self._position += 0.01
        self._stop.clear()
        return self._position

    @expose(stop=True)
    def halt(self) -> None:
        """The stop action."""
        self.stops += 1
        self._stop.set()

    @expose(readonly=True)
    def stop_count(self) -> int:
        return self.stops


class Chatty(Service):
    """Logs as much as asked: fills a console pipe that nobody reads."""

    @expose
    def talk(self, lines: int, width: int = 200) -> int:
        import logging

        log = logging.getLogger("chatty")
        for i in range(lines):
            log.info("%05d %s", i, "x" * width)
        return lines


class Roster(Service):
    """Parameters whose names the daemon's own call path also uses (``member``, ``action``, ``kind``)."""

    @expose
    def enrol(self, member: str, action: str = "join", kind: str = "guest") -> str:
        return f"{member}:{action}:{kind}"


class Frames(Service):
    """A camera-like service: its frame (1 MiB) is too large to push to subscribers; they re-read it."""

    SIZE = 131072  # float64 values: 1 MiB

    def __init__(self) -> None:
        self._frame = np.zeros(self.SIZE)

    @expose
    @property
    def frame(self) -> np.ndarray:
        return self._frame

    @expose(changes=["frame"])
    def shoot(self, value: float) -> None:
        self._frame = np.full(self.SIZE, value)

    @expose
    def expose_and_tell(self, value: float) -> None:
        self._frame = np.full(self.SIZE, value)
        self.notify("frame", self._frame)
