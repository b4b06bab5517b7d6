"""``panel(remote)``: one live ipywidgets control panel per service, built from its description.

Layout: a header (name, class, a coloured status badge reading online /
offline / unknown, one Lock/Unlock toggle with the holder, a Stop button when
the service has a stop action) and two collapsible sections: properties as a
grid (label · control · unit · limits · note; read-only values as text) and
methods (arguments beside their button, the result below; array results
plotted, with a live mode where it makes sense). Rows come from ``rows``,
controls from ``widget_mapping``, results from ``plots``.

One panel per ``RemoteService``: ``panel(remote)`` returns the open panel of
that object when there is one, so displaying a service again shows the same
live panel (one subscription, one keepalive thread). Wiring rules: every
remote operation a click starts runs on a daemon thread, so the kernel stays
responsive and nothing a panel starts keeps a process alive; what a panel
shows is widget state only (never ``with out:`` printing); errors are shown in
the panel, never raised into the kernel. Values arrive by push
(``remote.subscribe``) or, where that is unavailable, by polling
``remote.read_properties()``; a keepalive read notices a service that went
offline (the badge says so) and one that came back (the panel recovers by
itself). ``Panel.close()`` ends all of it; open panels close when the
interpreter exits. A panel's display bundle also carries ``text/html`` (the
values at display time) for viewers that do not render widgets.
"""

from __future__ import annotations

import atexit
import html
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np

from pyrolab_jupyter.core.members import stop_method
from pyrolab_jupyter.core.publish import CALL_PROPERTY, LOCK_PROPERTY
from pyrolab_jupyter.jupyter.controls import unit_of
from pyrolab_jupyter.jupyter.header import Header
from pyrolab_jupyter.jupyter.plots import error_html, numeric
from pyrolab_jupyter.jupyter.rows import MethodRow, PropertyRow, error_text, is_error, values_table

__all__ = ["MethodRow", "Panel", "PropertyRow", "panel"]

log = logging.getLogger(__name__)

_OPEN_SECTION_MAX = 24  # a section with more members than this starts collapsed
KEEPALIVE_S = 5.0  # with push, still read every value this often (at least)
_OFFLINE = ("ServiceOffline", "CommunicationError")  # errors that mean "nobody answers there"
_UNKNOWN = ("CallTimeout", "TimeoutError")  # no answer in time: maybe busy, maybe gone
TIME_AXIS = "time_axis"  # a service method of this name gives the x values of its 1-D results


def _spawn(target: Callable[..., None], *args: Any, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


def _section(title: str, rows: list[widgets.Widget], css: str) -> widgets.Accordion:
    box = widgets.VBox(rows)
    section = widgets.Accordion([box], titles=(f"{title} ({len(rows)})",),
                                selected_index=0 if len(rows) <= _OPEN_SECTION_MAX else None)
    section.add_class(css)
    return section


class Panel(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The widget ``panel()`` returns; ``close()`` ends its live updates and closes its widgets."""

    def __init__(self, remote: Any, *, poll_interval: float = 1.0, push: bool = True,
                 lock_lease: float | None = None) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval={poll_interval!r}: must be a positive number of seconds")
        self.remote = remote
        self.poll_interval = poll_interval
        self.push = push
        self.lock_lease = lock_lease
        self.updates = 0  # values applied from push or poll (benchmarks and tests read it)
        self.mode = "none"  # "push", "poll" or "none" once wired
        self.status_text = "online"  # the badge's word: online, offline or unknown
        self._closed = threading.Event()
        self._subscription: Any = None
        self._poller: threading.Thread | None = None
        self._lives: dict[str, threading.Thread] = {}
        self._lock_busy = threading.Lock()
        self._lock_info: Mapping[str, Any] | None = None

        cached = getattr(remote, "_pyrolab_description", None)  # read at connect: no second round trip
        description: dict[str, Any] = cached if isinstance(cached, dict) else remote.describe()
        self.description = description
        props: Mapping[str, Any] = description.get("properties") or {}
        methods: Mapping[str, Any] = description.get("methods") or {}
        self.stop_method = stop_method(description)
        values = self._read_all(list(props))
        self.properties = {n: PropertyRow(n, d, values.get(n)) for n, d in props.items()}
        self.methods = {n: MethodRow(n, d) for n, d in methods.items() if n != self.stop_method}
        self._x_axis_method = TIME_AXIS if TIME_AXIS in methods and not (
            methods[TIME_AXIS].get("parameters") or {}).get("required") else None

        self.header = Header(self._name, str(description.get("class", "")), description.get("description") or "",
                             self.status_text, description.get("locked_by"), self.stop_method)
        # the header's widgets by their old names (tests and users reach them from the panel)
        header = self.header
        self.status, self.lock_label, self.lock_button = header.status, header.lock_label, header.lock_button
        self.stop_button, self.header_note, self.last_change = header.stop_button, header.note, header.last_change
        sections = []
        if self.properties:
            sections.append(_section("Properties", [r.widget for r in self.properties.values()],
                                     "pyrolab-Panel-properties"))
        if self.methods:
            sections.append(_section("Methods", [r.widget for r in self.methods.values()], "pyrolab-Panel-methods"))
        super().__init__([self.header.widget, *sections])
        self.add_class("pyrolab-Panel")
        self._wire()

    @property
    def _name(self) -> str:
        return str(self.description.get("name") or getattr(self.remote, "_pyrolab_name", "service"))

    # wiring

    def _wire(self) -> None:
        for row in self.properties.values():
            if not row.readonly:
                row.control.on_commit(lambda _raw, row=row: self._commit(row))  # type: ignore[misc]
        for method in self.methods.values():
            method.button.on_click(lambda _b, method=method: self.call(method.name))
            if method.live is not None:
                method.live.observe(lambda change, method=method: self._live_switch(method, change["new"]),
                                    names="value")
        self.lock_button.on_click(lambda _b: self._lock_action())
        if self.stop_button is not None:
            self.stop_button.on_click(lambda _b: self.stop())
        self._start_live()

    def _start_live(self) -> None:
        if self.push and hasattr(self.remote, "subscribe") and self.properties:
            try:
                self._subscription = self.remote.subscribe(self._on_update)
                self.mode = "push"
            except Exception as err:  # an older daemon, a firewall: fall back to polling
                log.info("push unavailable for %s (%s); polling every %g s", self._name, err, self.poll_interval)
        if self.mode != "push" and self.properties:
            self.mode = "poll"
        # one thread per panel: polls (without push), or a slow keepalive that notices a service going
        # offline and coming back, shows what a lost push missed, and keeps the lock holder current
        interval = max(KEEPALIVE_S, 5 * self.poll_interval) if self.mode != "poll" else self.poll_interval
        self._poller = _spawn(self._poll, interval, name=f"pyrolab-panel-{self._name}")

    def _read_all(self, names: list[str]) -> dict[str, Any]:
        if not names:
            return {}
        try:
            values: dict[str, Any] = self.remote.read_properties(*names)
            return values
        except Exception as err:  # shown per property
            self.status_text = self._state_of(err)
            return dict.fromkeys(names, err)

    def _on_update(self, prop: str, value: Any, _time: float) -> None:
        if self._closed.is_set():
            return
        self._set_status(None)
        if prop == LOCK_PROPERTY:
            self._refresh_lock()  # someone (maybe another client) took or released the lock
            return
        if prop == CALL_PROPERTY:
            self.header.show_change(value, _time)
            return
        row = self.properties.get(prop)
        if row is not None:
            row.show(value)
            self.updates += 1

    def _poll(self, interval: float) -> None:
        names = list(self.properties)
        self._refresh_lock()
        if self.status_text != "online":  # the build's read failed: say so at once
            self._show_status(self.status_text)
        while not self._closed.wait(interval if self.status_text == "online" else self.poll_interval):
            try:
                values = self.remote.read_properties(*names) if names else self.remote.lock_info()
            except Exception as err:
                self._set_status(err)
                continue
            self._set_status(None)
            if not names:
                continue
            for name in names:
                if name in values and not self._closed.is_set():
                    row = self.properties[name]
                    if is_error(values[name]) or not _same(values[name], row.last_value):
                        row.show(values[name])
                        self.updates += 1

    # status

    @staticmethod
    def _state_of(err: BaseException | None) -> str:
        if err is None:
            return "online"
        kind = type(err).__name__
        return "offline" if kind in _OFFLINE else "unknown" if kind in _UNKNOWN else "online"

    def _set_status(self, err: BaseException | None) -> None:
        state = self._state_of(err)
        was = self.status_text
        if state != was:
            self._show_status(state)
            if state == "online" and was != "online" and not self._closed.is_set():
                _spawn(self._recover, name=f"pyrolab-panel-recover-{self._name}")
        if type(err).__name__ == "ServiceLocked":
            _spawn(self._refresh_lock, name="pyrolab-panel-lock-info")

    def _show_status(self, state: str) -> None:
        self.status_text = state
        self.header.show_status(state)

    def _recover(self) -> None:
        """Back online: renew the push (a restarted daemon forgot it), show every value and the lock again."""
        if self._subscription is not None:
            try:
                self._subscription.renew()
            except Exception as err:
                log.info("could not renew the subscription of %s: %s", self._name, err)
        values = self._read_all(list(self.properties))
        for name, row in self.properties.items():
            if name in values and not self._closed.is_set():
                row.show(values[name])
        self._refresh_lock()

    # actions (each runs its remote part on a daemon thread)

    def call(self, name: str) -> None:
        """Press ``name``'s call button: refused visibly while the previous call runs."""
        row = self.methods[name]
        if not row.busy.acquire(blocking=False):
            row.note.value = error_html("Busy", f"{name} is still running; this press was refused")
            return
        try:
            kwargs = row.arguments()
        except ValueError as err:
            row.busy.release()
            row.show_error(err)
            return
        row.set_busy(True)
        row.note.value = "<i>running…</i>"
        _spawn(self._run_call, row, kwargs, name=f"pyrolab-panel-call-{name}")

    def _invoke(self, row: MethodRow, kwargs: dict[str, Any]) -> bool:
        """One call of ``row``'s method, its result (or error) shown in the row; False when it failed."""
        try:
            method = getattr(self.remote, row.name)
            call_with = getattr(method, "call_with", None)  # spreads ``args`` for untyped methods
            result = call_with(kwargs) if call_with is not None else method(**kwargs)
        except Exception as err:  # shown in the panel, never raised into the kernel
            row.show_error(err)
            self._set_status(err)
            return False
        self._set_status(None)
        x, x_unit = self._x_axis(result)
        row.show_result(result, x, x_unit)
        return True

    def _run_call(self, row: MethodRow, kwargs: dict[str, Any]) -> None:
        try:
            self._invoke(row, kwargs)
        except Exception as err:  # showing the result failed (a widget error): still show something
            log.exception("panel could not show the result of %s", row.name)
            row.note.value = error_text(err)
        finally:
            row.calls += 1
            row.set_busy(False)
            row.busy.release()

    def _x_axis(self, result: Any) -> tuple[np.ndarray | None, str]:
        """The service's time axis for a 1-D result of the same length, else nothing."""
        data = numeric(result)
        if self._x_axis_method is None or data is None or data.ndim != 1:
            return None, ""
        try:
            axis = numeric(getattr(self.remote, self._x_axis_method)())
        except Exception as err:
            log.debug("no time axis from %s: %s", self._name, err)
            return None, ""
        if axis is None or axis.shape != data.shape:
            return None, ""
        returns = self.description["methods"][self._x_axis_method].get("returns") or {}
        return axis, unit_of(returns)

    def _live_switch(self, row: MethodRow, on: bool) -> None:
        row.button.disabled = on
        running = self._lives.get(row.name)
        if on and (running is None or not running.is_alive()) and not self._closed.is_set():
            self._lives[row.name] = _spawn(self._live_loop, row, name=f"pyrolab-panel-live-{row.name}")

    def _live_loop(self, row: MethodRow) -> None:
        """Repeat ``row``'s method at its chosen rate until switched off, an error, or close()."""
        assert row.live is not None and row.rate is not None
        while row.live.value and not self._closed.is_set():
            started = time.monotonic()
            try:
                ok = self._invoke(row, row.arguments())
            except Exception as err:  # a refused argument, a widget error: shown, and repeating stops
                row.show_error(err)
                ok = False
            row.calls += 1
            if not ok:
                row.live.value = False
                break
            self._closed.wait(max(0.0, 1.0 / float(row.rate.value) - (time.monotonic() - started)))

    def stop(self) -> None:
        """Press Stop: call the service's stop action now (allowed while someone holds the lock)."""
        if self.stop_method is None:
            raise AttributeError(f"{self._name} has no stop action (a method exposed with stop=True)")
        for row in self.methods.values():
            if row.live is not None and row.live.value:
                row.live.value = False
        self.header_note.value = f"<i>{html.escape(self.stop_method)}…</i>"
        _spawn(self._run_stop, name=f"pyrolab-panel-stop-{self._name}")

    def _run_stop(self) -> None:
        assert self.stop_method is not None
        try:
            getattr(self.remote, self.stop_method)()
        except Exception as err:
            self.header_note.value = error_text(err)
            self._set_status(err)
            return
        self.header_note.value = f"stopped at {time.strftime('%H:%M:%S')}"

    def _commit(self, row: PropertyRow) -> None:
        try:
            value = row.control.get()
        except ValueError as err:  # refused here (out of range, bad text): said beside it, never clamped
            row.note.value = error_text(err)
            row.restore()
            return
        row.note.value = "<i>setting…</i>"
        _spawn(self._run_set, row, value, name=f"pyrolab-panel-set-{row.name}")

    def _run_set(self, row: PropertyRow, value: Any) -> None:
        try:
            setattr(self.remote, row.name, value)
        except Exception as err:
            row.note.value = error_text(err)
            self._set_status(err)
            row.restore()
            return
        row.last_value = value
        row.note.value = ""
        self._set_status(None)
        if self.mode == "poll":
            row.show(value)

    def _lock_action(self) -> None:
        if not self._lock_busy.acquire(blocking=False):
            self.header_note.value = error_html("Busy", "a lock request is still running")
            return
        _spawn(self._run_lock, not (self._lock_info or {}).get("mine"), name="pyrolab-panel-lock")

    def _run_lock(self, lock: bool) -> None:
        try:
            if lock:
                self.remote.lock(lease=self.lock_lease)
            else:
                self.remote.unlock()
            self.header_note.value = ""
        except Exception as err:
            self.header_note.value = error_text(err)
        finally:
            self._lock_busy.release()
        self._refresh_lock()

    def _refresh_lock(self) -> None:
        try:
            info = self.remote.lock_info()
        except Exception as err:
            self._set_status(err)
            return
        self._show_lock(info)

    def _show_lock(self, info: Mapping[str, Any] | None) -> None:
        self._lock_info = info
        self.header.show_lock(info)

    # display and ending

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget, plus an HTML table of the values now (for viewers that do not render widgets)."""
        bundle: dict[str, Any] = super()._repr_mimebundle_(**kwargs) or {}
        title = (f"<b>{html.escape(self._name)}</b> <code>{html.escape(str(self.description.get('class', '')))}"
                 f"</code>: {self.status_text}, {html.escape(self.lock_label.value)}; values at "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')} (run the notebook for the live panel)")
        bundle["text/html"] = values_table(title, self.properties)
        return bundle

    def close(self) -> None:
        """End push, polling and live modes, then close this panel's widgets (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        _forget(self)
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                subscription.close()
            except Exception:  # the daemon may be gone; the subscription dies with it
                log.debug("closing the subscription of %s failed", self._name, exc_info=True)
        for child in _descendants(self):
            child.close()
        super().close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(a, b)) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else bool(a == b)
    except Exception:  # values that cannot be compared: show the new one
        return False


def _descendants(root: widgets.Widget) -> list[widgets.Widget]:
    found: list[widgets.Widget] = []
    stack = list(getattr(root, "children", ()))
    while stack:
        widget = stack.pop()
        found.append(widget)
        stack.extend(getattr(widget, "children", ()))
        for part in (*getattr(widget, "marks", ()), *getattr(widget, "axes", ())):  # bqplot figures
            found.append(part)
            picture = getattr(part, "image", None)  # an Image mark's picture is a widget of its own
            if isinstance(picture, widgets.Widget):
                found.append(picture)
    return found


_open: dict[int, Panel] = {}  # the open panel of each RemoteService, by id() of the object
_open_mutex = threading.Lock()


def _forget(closed: Panel) -> None:
    with _open_mutex:
        if _open.get(id(closed.remote)) is closed:
            del _open[id(closed.remote)]


def panel(remote: Any, *, poll_interval: float = 1.0, push: bool = True,
          lock_lease: float | None = None) -> Panel:
    """The live ipywidgets panel of a ``RemoteService``: the open one if there is one, else a new one.

    Parameters
    ----------
    remote:
        A ``RemoteService`` (``lab.connect(name)``).
    poll_interval:
        Seconds between ``read_properties()`` polls when push updates are unavailable (or ``push=False``).
    push:
        Subscribe to the service's announcements (the default); False polls instead.
    lock_lease:
        Lease of the lock the Lock button takes; None holds it until Unlock or this process ends.

    Returns
    -------
    Panel
        A ``VBox`` to display. The options apply when it is built; ``close()`` it to end its live
        updates (the next ``panel(remote)`` builds a new one).
    """
    with _open_mutex:  # held while building: two threads asking at once still get one panel
        found = _open.get(id(remote))
        if found is not None and found.remote is remote and not found.closed:
            return found
        built = Panel(remote, poll_interval=poll_interval, push=push, lock_lease=lock_lease)
        _open[id(remote)] = built
        return built


def _close_open_panels() -> None:
    with _open_mutex:
        panels = list(_open.values())
    for open_panel in panels:
        try:
            open_panel.close()
        except Exception:  # exiting: nothing more to do
            pass


atexit.register(_close_open_panels)
