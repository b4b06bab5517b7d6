"""``panel(remote)``: an ipywidgets control panel built from one ``describe()`` of a service, with live values.

Layout: a header (name, class, status, lock holder with Lock/Unlock), a
collapsible properties section (read-only values shown live, writable ones
with their setter widget) and a collapsible methods section (parameters, a
call button, the result beside it). Widgets come from ``widget_mapping``
(schema → control) and results from ``plots`` (text or a bqplot figure).

Wiring rules: every remote operation a click starts runs on a daemon thread,
so the kernel stays responsive and nothing a panel starts keeps a process
alive; what a panel shows is widget state only (never ``with out:`` printing);
errors are shown in the panel with their type and message, never raised into
the kernel. Values arrive by push (``remote.subscribe``) or, where that is
unavailable or refused, by polling ``remote.read_properties()``. ``Panel.close()`` ends
both, and open panels are closed when the interpreter exits.
"""

from __future__ import annotations

import atexit
import html
import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from pyrolab_jupyter.core.client import RemoteService, add_view_hook
from pyrolab_jupyter.core.publish import LOCK_PROPERTY
from pyrolab_jupyter.jupyter.plots import error_view, result_view
from pyrolab_jupyter.jupyter.widget_mapping import Control, Field, HTMLStyle, control_for, shared, unit_of

__all__ = ["MethodRow", "Panel", "PropertyRow", "panel"]

log = logging.getLogger(__name__)

_OPEN_SECTION_MAX = 24  # a section with more members than this starts collapsed
KEEPALIVE_S = 5.0  # with push, still read every value this often (at least)
_open_panels: weakref.WeakSet[Panel] = weakref.WeakSet()


def _is_error(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("__pyrolab__") == "error"


def _spawn(target: Callable[..., None], *args: Any, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


# layout: plain functions from description parts to widgets


def _row_layout() -> widgets.Layout:
    return shared(widgets.Layout, align_items="center", flex_flow="row wrap")


def _note() -> widgets.HTML:
    note = widgets.HTML("", style=shared(HTMLStyle), layout=shared(widgets.Layout))
    note.add_class("pyrolab-Panel-note")
    return note


def _show_error(note: widgets.HTML, err: BaseException) -> None:
    note.value = error_view(type(err).__name__, str(err)).value


class PropertyRow:
    """One property: its control (disabled when read-only) and a note for errors."""

    def __init__(self, name: str, description: Mapping[str, Any], value: Any) -> None:
        self.name = name
        self.readonly = bool(description.get("readonly"))
        self.schema: Mapping[str, Any] = description.get("schema") or {}
        self.note = _note()
        failed = _is_error(value)
        field = Field(name, self.schema, tooltip=description.get("description") or "",
                      value=None if failed else value, disabled=self.readonly)
        self.control: Control = control_for(field)
        self.last_value = None if failed else value
        if failed:
            self.note.value = error_view(str(value.get("type")), str(value.get("message"))).value
        self.widget = widgets.HBox([*self.control.parts, self.note], layout=_row_layout())
        self.widget.add_class("pyrolab-Panel-property")
        self.widget.add_class(f"pyrolab-Panel-property-{name}")

    def show(self, value: Any) -> None:
        """A value from the service (push, poll or read)."""
        if _is_error(value):
            self.note.value = error_view(str(value.get("type")), str(value.get("message"))).value
            return
        self.last_value = value
        try:
            self.control.set(value)
        except Exception as err:  # a value the widget cannot hold (type changed remotely)
            _show_error(self.note, err)
            return
        if self.note.value:
            self.note.value = ""


class MethodRow:
    """One method: parameter controls, a call button, and the last result beside it."""

    def __init__(self, name: str, description: Mapping[str, Any]) -> None:
        self.name = name
        params: Mapping[str, Any] = description.get("parameters") or {}
        doc = description.get("description") or ""
        self.controls: dict[str, Control] = {}
        for pname, schema in (params.get("properties") or {}).items():
            default = schema.get("default") if "default" in schema else None
            field = Field(pname, schema, tooltip=schema.get("description") or "", value=default)
            self.controls[pname] = control_for(field)
        self.unit = unit_of(description.get("returns") or {})
        self.button = widgets.Button(description=name, tooltip=doc or None, icon="play",
                                     style=shared(widgets.ButtonStyle),
                                     layout=shared(widgets.Layout, width="auto", min_width="130px"))
        self.button.add_class("pyrolab-Panel-call")
        self.button.add_class(f"pyrolab-Panel-call-{name}")
        self.note = _note()
        self.result = widgets.Box([], layout=shared(widgets.Layout))
        self.result.add_class("pyrolab-Panel-result-box")
        self.busy = threading.Lock()
        self.calls = 0
        body = [c.widget for c in self.controls.values()]
        if len(body) > 1:
            body = [widgets.VBox(body, layout=shared(widgets.Layout))]
        self.widget = widgets.HBox([self.button, *body, self.note, self.result], layout=_row_layout())
        self.widget.add_class("pyrolab-Panel-method")
        self.widget.add_class(f"pyrolab-Panel-method-{name}")

    def arguments(self) -> dict[str, Any]:
        return {pname: control.get() for pname, control in self.controls.items()}

    def set_busy(self, busy: bool) -> None:
        with self.button.hold_sync():
            self.button.icon = "spinner" if busy else "play"
            self.button.button_style = "warning" if busy else ""
        (self.button.add_class if busy else self.button.remove_class)("pyrolab-Panel-busy")

    def show_result(self, value: Any) -> None:
        previous = self.result.children[0] if self.result.children else None
        shown = result_view(value, self.unit, previous)
        if shown is not previous:
            self.result.children = (shown,)
        self.note.value = ""

    def show_error(self, err: BaseException) -> None:
        self.result.children = (error_view(type(err).__name__, str(err)),)
        self.note.value = ""


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
        self._closed = threading.Event()
        self._subscription: Any = None
        self._poller: threading.Thread | None = None
        self._lock_busy = threading.Lock()

        description = remote.describe()  # the one description round trip
        self.description = description
        props: Mapping[str, Any] = description.get("properties") or {}
        methods: Mapping[str, Any] = description.get("methods") or {}
        values = self._read_all(list(props))
        self.properties = {n: PropertyRow(n, d, values.get(n)) for n, d in props.items()}
        self.methods = {n: MethodRow(n, d) for n, d in methods.items()}

        self.status = widgets.Label("online")
        self.status.add_class("pyrolab-Panel-status")
        self.lock_label = widgets.Label(self._holder_text(description.get("locked_by")))
        self.lock_label.add_class("pyrolab-Panel-lock")
        self.lock_button = widgets.Button(description="Lock", icon="lock", layout=widgets.Layout(width="auto"))
        self.lock_button.add_class("pyrolab-Panel-lock-button")
        self.unlock_button = widgets.Button(description="Unlock", icon="unlock", layout=widgets.Layout(width="auto"))
        self.unlock_button.add_class("pyrolab-Panel-unlock-button")
        self.header_note = _note()
        title = widgets.HTML(
            f"<b>{html.escape(str(description.get('name') or getattr(remote, '_pyrolab_name', '?')))}</b> "
            f"<code>{html.escape(str(description.get('class', '')))}</code>",
            tooltip=description.get("description") or None,
        )
        title.add_class("pyrolab-Panel-title")
        header = widgets.HBox([title, self.status, self.lock_label, self.lock_button, self.unlock_button,
                               self.header_note])
        header.add_class("pyrolab-Panel-header")
        sections = []
        if self.properties:
            sections.append(_section("Properties", [r.widget for r in self.properties.values()],
                                     "pyrolab-Panel-properties"))
        if self.methods:
            sections.append(_section("Methods", [r.widget for r in self.methods.values()], "pyrolab-Panel-methods"))
        super().__init__([header, *sections])
        self.add_class("pyrolab-Panel")

        self._wire()
        _open_panels.add(self)

    # wiring

    def _wire(self) -> None:
        for row in self.properties.values():
            if not row.readonly:
                row.control.on_commit(lambda _raw, row=row: self._commit(row))  # type: ignore[misc]
        for method in self.methods.values():
            method.button.on_click(lambda _b, method=method: self.call(method.name))
        self.lock_button.on_click(lambda _b: self._lock_action(True))
        self.unlock_button.on_click(lambda _b: self._lock_action(False))
        self._start_live()

    def _start_live(self) -> None:
        if not self.properties:
            return
        if self.push and hasattr(self.remote, "subscribe"):
            try:
                self._subscription = self.remote.subscribe(self._on_update)
                self.mode = "push"
                # a slow safety poll: finds a restarted daemon (which renews the subscription)
                # and shows what a lost push missed
                self._poller = _spawn(self._poll, max(KEEPALIVE_S, 5 * self.poll_interval),
                                      name=f"pyrolab-panel-keepalive-{self._name}")
                return
            except Exception as err:  # an older daemon, a firewall: fall back to polling
                log.info("push unavailable for %s (%s); polling every %g s", self._name, err, self.poll_interval)
        self.mode = "poll"
        self._poller = _spawn(self._poll, self.poll_interval, name=f"pyrolab-panel-poll-{self._name}")

    @property
    def _name(self) -> str:
        return str(self.description.get("name") or getattr(self.remote, "_pyrolab_name", "service"))

    def _read_all(self, names: list[str]) -> dict[str, Any]:
        if not names:
            return {}
        try:
            values: dict[str, Any] = self.remote.read_properties(*names)
            return values
        except Exception as err:  # shown per property
            failed = {"__pyrolab__": "error", "type": type(err).__name__, "message": str(err)}
            return dict.fromkeys(names, failed)

    def _on_update(self, prop: str, value: Any, _time: float) -> None:
        if prop == LOCK_PROPERTY and not self._closed.is_set():
            self._refresh_lock()  # someone (maybe another client) took or released the lock
            return
        row = self.properties.get(prop)
        if row is None or self._closed.is_set():
            return
        row.show(value)
        self.updates += 1

    def _poll(self, interval: float) -> None:
        names = list(self.properties)
        while not self._closed.wait(interval):
            try:
                values = self.remote.read_properties(*names)
            except Exception as err:
                self._set_status(err)
                continue
            self._set_status(None)
            for name in names:
                if name in values and not self._closed.is_set():
                    row = self.properties[name]
                    if values[name] != row.last_value or _is_error(values[name]):
                        row.show(values[name])
                        self.updates += 1

    def _set_status(self, err: BaseException | None) -> None:
        kind = type(err).__name__ if err is not None else ""
        text = "offline" if kind in ("ServiceOffline", "CallTimeout", "CommunicationError") else "online"
        if self.status.value != text:
            self.status.value = text
        if kind == "ServiceLocked":
            _spawn(self._refresh_lock, name="pyrolab-panel-lock-info")

    # actions (each runs its remote part on a daemon thread)

    def call(self, name: str) -> None:
        """Press ``name``'s call button: refused visibly while the previous call runs."""
        row = self.methods[name]
        if not row.busy.acquire(blocking=False):
            row.note.value = error_view("Busy", f"{name} is still running; this press was refused").value
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

    def _run_call(self, row: MethodRow, kwargs: dict[str, Any]) -> None:
        try:
            try:
                result = getattr(self.remote, row.name)(**kwargs)
            except Exception as err:  # shown in the panel, never raised into the kernel
                row.show_error(err)
                self._set_status(err)
            else:
                row.show_result(result)
                self._set_status(None)
            row.calls += 1
        except Exception as err:  # showing the result failed (a widget error): still show something
            log.exception("panel could not show the result of %s", row.name)
            row.note.value = error_view(type(err).__name__, str(err)).value
        finally:
            row.set_busy(False)
            row.busy.release()

    def _commit(self, row: PropertyRow) -> None:
        try:
            value = row.control.get()
        except ValueError as err:
            _show_error(row.note, err)
            return
        row.note.value = "<i>setting…</i>"
        _spawn(self._run_set, row, value, name=f"pyrolab-panel-set-{row.name}")

    def _run_set(self, row: PropertyRow, value: Any) -> None:
        try:
            setattr(self.remote, row.name, value)
        except Exception as err:
            _show_error(row.note, err)
            self._set_status(err)
            if row.last_value is not None:
                try:
                    row.control.set(row.last_value)
                except Exception:  # the note already explains what went wrong
                    log.debug("could not restore %s", row.name, exc_info=True)
            return
        row.last_value = value
        row.note.value = ""
        self._set_status(None)
        if self.mode == "poll":
            row.show(value)

    def _lock_action(self, lock: bool) -> None:
        if not self._lock_busy.acquire(blocking=False):
            self.header_note.value = error_view("Busy", "a lock request is still running").value
            return
        _spawn(self._run_lock, lock, name="pyrolab-panel-lock")

    def _run_lock(self, lock: bool) -> None:
        try:
            if lock:
                self.remote.lock(lease=self.lock_lease)
            else:
                self.remote.unlock()
            self.header_note.value = ""
        except Exception as err:
            _show_error(self.header_note, err)
        finally:
            self._lock_busy.release()
        self._refresh_lock()

    def _refresh_lock(self) -> None:
        try:
            info = self.remote.lock_info()
        except Exception as err:
            _show_error(self.header_note, err)
            return
        mine = bool(info and info.get("mine"))
        self.lock_label.value = self._holder_text(info.get("holder") if info else None, mine)

    @staticmethod
    def _holder_text(holder: str | None, mine: bool = False) -> str:
        if not holder:
            return "unlocked"
        return f"locked by {holder}" + (" (this kernel)" if mine else "")

    # ending

    def close(self) -> None:
        """End push and polling, then close this panel's widgets (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        _open_panels.discard(self)
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


def _descendants(root: widgets.Widget) -> list[widgets.Widget]:
    found: list[widgets.Widget] = []
    stack = list(getattr(root, "children", ()))
    while stack:
        widget = stack.pop()
        found.append(widget)
        stack.extend(getattr(widget, "children", ()))
        for mark in getattr(widget, "marks", ()):  # bqplot figures
            found.append(mark)
    return found


def _panel_view(remote: RemoteService) -> dict[str, Any] | None:
    """A RemoteService shown as a cell's result displays its panel."""
    bundle: dict[str, Any] = panel(remote)._repr_mimebundle_()
    return bundle


add_view_hook(_panel_view)  # our own registry (no IPython or Pyro5 state): imported panels take over display


def panel(remote: Any, *, poll_interval: float = 1.0, push: bool = True,
          lock_lease: float | None = None) -> Panel:
    """An ipywidgets panel for a ``RemoteService``, built from one ``describe()`` round trip.

    Parameters
    ----------
    remote:
        A ``RemoteService`` (``lab.connect(name)``).
    poll_interval:
        Seconds between ``read()`` polls when push updates are unavailable (or ``push=False``).
    push:
        Subscribe to the service's announcements (the default); False polls instead.
    lock_lease:
        Lease of the lock the Lock button takes; None holds it until Unlock or this process ends.

    Returns
    -------
    Panel
        A ``VBox`` to display; ``close()`` it to end its live updates.
    """
    return Panel(remote, poll_interval=poll_interval, push=push, lock_lease=lock_lease)


def _close_open_panels() -> None:
    for open_panel in list(_open_panels):
        try:
            open_panel.close()
        except Exception:  # exiting: nothing more to do
            pass


atexit.register(_close_open_panels)
