"""A PyVISA-backed SCPI service: the base class for drivers of real instruments.

``VisaInstrument(resource, backend="@py")`` opens one VISA resource when it is
constructed and exposes the raw SCPI conversation: ``query``, ``write``,
``read``, ``identify`` and the timeout and terminations. PyVISA is an optional
extra (``pip install pyrolab-jupyter[visa]``); ``backend="@sim"`` runs on
pyvisa-sim's stock devices, e.g. ``VisaInstrument("GPIB0::9::INSTR", "@sim")``
answers ``*IDN?`` with ``SCPI,MOCK,VERSION_1.0``.

A driver for a real instrument subclasses it and exposes one method or property
per setting, with limits and units in the annotations so the daemon checks
them before anything is sent and panels show proper controls::

    from typing import Annotated
    from pyrolab_jupyter import Range, Unit, expose
    from pyrolab_jupyter.instruments.visa import VisaInstrument

    class PowerSupply(VisaInstrument):
        \"\"\"A single-output bench supply.\"\"\"

        @expose
        @property
        def voltage(self) -> Annotated[float, Range(0, 6), Unit("V")]:
            \"\"\"Output voltage setpoint.\"\"\"
            return float(self.query(":VOLT:IMM:AMPL?"))

        @voltage.setter
        def voltage(self, volts: Annotated[float, Range(0, 6), Unit("V")]) -> None:
            self.write(f":VOLT:IMM:AMPL {volts:.3f}")

        @expose
        def output(self, on: bool) -> None:
            \"\"\"Switch the output on or off.\"\"\"
            self.write(f"OUTP {int(on)}")

Host it like any service (``class: mylab.drivers:PowerSupply`` with
``args: {resource: "USB0::0x1234::0x5678::SN01::INSTR"}`` in a lab file).

``record="session.jsonl"`` appends every ``write``, ``query`` and ``read`` with
its reply and timing to a JSON-lines file (``instruments.recording``);
``pyrolab replay session.jsonl -o device.yaml`` turns it into a pyvisa-sim
device (``instruments.replay``), so a driver's tests run in CI against what the
real instrument said.

Commands go out one at a time (the daemon serialises calls to a service), and
nothing here is ``readonly``: a query from another client between someone's
``write`` and ``read`` would take their reply.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

from pyrolab_jupyter.core.errors import CallTimeout
from pyrolab_jupyter.core.service import Range, Service, Unit, expose
from pyrolab_jupyter.instruments.recording import SessionRecorder

if TYPE_CHECKING:
    from pyvisa.resources import MessageBasedResource

__all__ = ["VisaInstrument"]

TimeoutMS = Annotated[int, Range(1, 3_600_000), Unit("ms")]

_CHECK = "check the address with `pyvisa-shell` or pyvisa.ResourceManager({backend!r}).list_resources()"


class VisaInstrument(Service):
    """An instrument spoken to in SCPI over VISA (GPIB, USB-TMC, LAN, serial)."""

    def __init__(
        self,
        resource: str,
        backend: str = "@py",
        timeout_ms: int = 2000,
        read_termination: str = "\n",
        write_termination: str = "\n",
        record: str | Path | None = None,
    ) -> None:
        try:
            import pyvisa
        except ImportError as err:
            raise ImportError(
                f"VisaInstrument({resource!r}) needs PyVISA: pip install 'pyrolab-jupyter[visa]'"
            ) from err
        self._resource_name = resource
        self._backend = backend
        self._visa_io_error = pyvisa.errors.VisaIOError
        self._timeout_code = pyvisa.constants.StatusCode.error_timeout
        where = f"VISA resource {resource!r} on backend {backend!r}"
        try:
            self._manager = pyvisa.ResourceManager(backend)
        except (ValueError, OSError, pyvisa.errors.Error) as err:
            raise ConnectionError(
                f"cannot open {where}: the backend is not available ({err}); "
                "'@py' needs pyvisa-py, '@sim' needs pyvisa-sim, '' or '@ivi' a vendor VISA library"
            ) from err
        try:
            handle = self._manager.open_resource(resource, open_timeout=int(timeout_ms))
        except (ValueError, OSError, pyvisa.errors.Error) as err:
            raise ConnectionError(f"cannot open {where} ({err}): {_CHECK.format(backend=backend)}") from err
        # Some backends (pyvisa-sim) hand back a dead session instead of failing.
        if not handle.session:
            raise ConnectionError(f"no {where}: {_CHECK.format(backend=backend)}")
        if not isinstance(handle, pyvisa.resources.MessageBasedResource):
            handle.close()
            raise ConnectionError(f"{where} does not take text commands: SCPI needs an INSTR or SOCKET")
        self._handle: MessageBasedResource | None = handle
        handle.timeout = int(timeout_ms)
        handle.read_termination = read_termination
        handle.write_termination = write_termination
        if record is not None:
            try:
                self._handle = cast("MessageBasedResource", SessionRecorder(handle, record, resource))
            except OSError:
                handle.close()
                raise

    @property
    def _res(self) -> MessageBasedResource:
        if self._handle is None:
            raise ConnectionError(f"VISA resource {self._resource_name!r} is closed")
        return self._handle

    def _io(self, what: str, action: Any) -> Any:
        """Run one exchange; a VISA timeout becomes a ``TimeoutError`` that names it."""
        try:
            return action()
        except self._visa_io_error as err:
            if err.error_code == self._timeout_code:
                raise CallTimeout(
                    f"{what} on {self._resource_name!r}: no reply within {self._res.timeout:g} ms"
                    " (check the command, the terminations and the timeout)"
                ) from None
            raise OSError(f"{what} on {self._resource_name!r} failed: {err}") from err

    @expose
    @property
    def resource(self) -> str:
        """The VISA address this service talks to."""
        return self._resource_name

    @expose
    @property
    def backend(self) -> str:
        """The PyVISA backend (``@py``, ``@sim``, or ``""`` for the vendor library)."""
        return self._backend

    @expose
    @property
    def timeout_ms(self) -> TimeoutMS:
        """How long a read waits for a reply before it fails with a ``TimeoutError``."""
        return int(self._res.timeout)

    @timeout_ms.setter
    def timeout_ms(self, ms: TimeoutMS) -> None:
        self._res.timeout = int(ms)

    @expose
    @property
    def read_termination(self) -> str:
        """Characters that end each reply (stripped from what ``read`` returns)."""
        return str(self._res.read_termination)

    @read_termination.setter
    def read_termination(self, chars: str) -> None:
        self._res.read_termination = chars

    @expose
    @property
    def write_termination(self) -> str:
        """Characters appended to each command sent."""
        return str(self._res.write_termination)

    @write_termination.setter
    def write_termination(self, chars: str) -> None:
        self._res.write_termination = chars

    @expose
    def query(self, command: str) -> str:
        """Send ``command`` and return the instrument's reply."""
        return str(self._io(f"query({command!r})", lambda: self._res.query(command)))

    @expose
    def write(self, command: str) -> None:
        """Send ``command`` without reading anything back."""
        self._io(f"write({command!r})", lambda: self._res.write(command))

    @expose
    def read(self) -> str:
        """Read one reply (after a ``write`` of a query)."""
        return str(self._io("read()", self._res.read))

    @expose
    def identify(self) -> str:
        """The instrument's ``*IDN?`` answer: maker, model, serial, firmware."""
        return self.query("*IDN?")

    @expose
    def reset(self) -> None:
        """Send ``*RST``: back to the instrument's default settings."""
        self.write("*RST")

    def close(self) -> None:
        """Release the VISA resource (safe to call twice).

        The resource manager stays open: PyVISA shares one per backend in a
        process, so closing it would cut every other instrument off too.
        """
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()  # a SessionRecorder closes its recording too
