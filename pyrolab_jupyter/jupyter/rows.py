"""The rows of a panel: one per property (label · control · unit · limits · note) and one per method.

Rows hold widgets and show what they are given; they start no thread and make
no remote call (the panel wires them). Every property row is a grid with the
same column template, so the columns line up down the panel; a method row
keeps its arguments beside its button, and its result beside them.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle, LabelStyle

from pyrolab_jupyter.jupyter.controls import (
    REFUSED,
    Control,
    Field,
    format_value,
    limits_text,
    readout,
    shared,
    unit_of,
)
from pyrolab_jupyter.jupyter.plots import error_html, result_view
from pyrolab_jupyter.jupyter.widget_mapping import control_for

__all__ = ["LIVE_RATES", "MethodRow", "PropertyRow", "error_text", "is_error", "note", "values_table"]

_COLUMNS = "130px 300px 50px 120px minmax(180px, 1fr)"  # label · control · unit · limits · note
LIVE_RATES = (0.5, 1.0, 2.0, 5.0, 10.0)  # Hz offered by a method's live mode


def is_error(value: Any) -> bool:
    """A value that stands for a failed read: an exception object, or the older wire form."""
    return isinstance(value, BaseException) or (isinstance(value, Mapping) and value.get("__pyrolab__") == "error")


def error_text(value: Any) -> str:
    """The HTML a note shows for a failed read or call, or for a value refused before sending."""
    if isinstance(value, ValueError) and REFUSED in str(value):  # the panel's own refusal: the message says it all
        return error_html("", str(value))
    if isinstance(value, BaseException):  # a remote error names its own type (``remote_type``)
        kind = str(getattr(value, "remote_type", "") or type(value).__name__).rsplit(".", 1)[-1]
        return error_html(kind, str(value))
    return error_html(str(value.get("type")), str(value.get("message")))


def note() -> widgets.HTML:
    """Where a row says what went wrong (a refusal, an error) or what is going on."""
    return widgets.HTML("", style=shared(HTMLStyle), layout=shared(widgets.Layout),
                        _dom_classes=("pyrolab-Panel-note",))


def _small(text: str, css: str) -> widgets.Label:
    return widgets.Label(text, style=shared(LabelStyle), layout=shared(widgets.Layout), _dom_classes=(css,))


class PropertyRow:
    """One property: label, control (text when read-only), unit, limits and a note, in grid columns."""

    def __init__(self, name: str, description: Mapping[str, Any], value: Any) -> None:
        self.name = name
        self.readonly = bool(description.get("readonly"))
        self.schema: Mapping[str, Any] = description.get("schema") or {}
        self.unit = unit_of(self.schema)
        self.note = note()
        failed = is_error(value)
        doc = description.get("description") or ""
        field = Field(name, self.schema, tooltip=doc, value=None if failed else value)
        self.control: Control = readout(field) if self.readonly else control_for(field)
        self.last_value = None if failed else value
        if failed:
            self.note.value = error_text(value)
        label = widgets.Label(name, tooltip=doc or None, style=shared(LabelStyle), layout=shared(widgets.Layout),
                              _dom_classes=("pyrolab-Panel-label",))
        self.widget = widgets.GridBox(
            [label, self.control.widget, _small(self.unit, "pyrolab-Panel-unit"),
             _small(limits_text(self.schema), "pyrolab-Panel-limits"), self.note],
            layout=shared(widgets.Layout, grid_template_columns=_COLUMNS, align_items="center",
                          grid_gap="0px 8px"),
            _dom_classes=("pyrolab-Panel-property", f"pyrolab-Panel-property-{name}",
                          *(("pyrolab-Panel-readonly",) if self.readonly else ())))

    def show(self, value: Any) -> None:
        """A value from the service (push, poll or read)."""
        if is_error(value):
            self.note.value = error_text(value)
            return
        self.last_value = value
        try:
            self.control.set(value)
        except Exception as err:  # a value the widget cannot hold (type changed remotely)
            self.note.value = error_text(err)
            return
        if self.note.value:
            self.note.value = ""

    def restore(self) -> None:
        """Show the service's value again (after a refused or failed change)."""
        if self.last_value is not None:
            try:
                self.control.set(self.last_value)
            except Exception:  # the note already says what went wrong
                pass


def _argument(name: str, control: Control, schema: Mapping[str, Any]) -> list[widgets.Widget]:
    """One argument beside its button: its input (which carries the name), then unit and limits in small print."""
    control.value_widget.add_class("pyrolab-Panel-argument")
    control.value_widget.add_class(f"pyrolab-Panel-argument-{name}")
    limits = limits_text(schema)
    hint = " ".join(t for t in (unit_of(schema), f"[{limits}]" if limits else "") if t)
    return [*control.parts, _small(hint, "pyrolab-Panel-hint")] if hint else list(control.parts)


def _repeatable(description: Mapping[str, Any]) -> bool:
    """Whether live mode makes sense: an array result and no argument without a default."""
    params: Mapping[str, Any] = description.get("parameters") or {}
    returns: Mapping[str, Any] = description.get("returns") or {}
    return bool(returns.get("x-ndarray")) and not params.get("required")


class MethodRow:
    """One method: its button, its arguments beside it, a note and the last result.

    A method returning an array whose arguments all have defaults also gets a
    live mode (a toggle and a rate) that the panel repeats on a thread.
    """

    def __init__(self, name: str, description: Mapping[str, Any]) -> None:
        self.name = name
        params: Mapping[str, Any] = description.get("parameters") or {}
        doc = description.get("description") or ""
        self.controls: dict[str, Control] = {}
        arguments = []
        for pname, schema in (params.get("properties") or {}).items():
            default = schema.get("default") if "default" in schema else None
            control = control_for(Field(pname, schema, tooltip=schema.get("description") or "", value=default,
                                        label=True))
            self.controls[pname] = control
            arguments.extend(_argument(pname, control, schema))
        self.returns: Mapping[str, Any] = description.get("returns") or {}
        self.unit = unit_of(self.returns)
        self.button = widgets.Button(description=name, tooltip=doc or None, icon="play",
                                     style=shared(widgets.ButtonStyle),
                                     layout=shared(widgets.Layout, width="130px", min_width="130px"),
                                     _dom_classes=("pyrolab-Panel-call", f"pyrolab-Panel-call-{name}"))
        self.note = note()
        self.result = widgets.Box([], layout=shared(widgets.Layout), _dom_classes=("pyrolab-Panel-result-box",))
        self.busy = threading.Lock()
        self.calls = 0
        self.live: widgets.ToggleButton | None = None
        self.rate: widgets.Dropdown | None = None
        extras: list[widgets.Widget] = []
        if _repeatable(description):
            self.live = widgets.ToggleButton(False, description="Live", icon="refresh",
                                             tooltip=f"repeat {name} at the chosen rate",
                                             layout=shared(widgets.Layout, width="80px"))
            self.live.add_class("pyrolab-Panel-live")
            self.rate = widgets.Dropdown(options=[(f"{r:g} Hz", r) for r in LIVE_RATES], value=2.0,
                                         layout=shared(widgets.Layout, width="90px"))
            self.rate.add_class("pyrolab-Panel-rate")
            extras = [self.live, self.rate]
        # the result follows on the same line; a plot, wider than what is left, wraps below
        self.widget = widgets.HBox([self.button, *arguments, *extras, self.note, self.result],
                                   layout=shared(widgets.Layout, align_items="center", flex_flow="row wrap",
                                                 margin="2px 0", grid_gap="4px 8px"),
                                   _dom_classes=("pyrolab-Panel-method", f"pyrolab-Panel-method-{name}"))
        for pname, control in self.controls.items():
            control.on_commit(lambda _raw, pname=pname: self._check(pname))  # type: ignore[misc]

    def _check(self, pname: str) -> None:
        """Say at once when a typed argument would be refused (the call checks again)."""
        try:
            self.controls[pname].get()
        except ValueError as err:
            self.note.value = error_text(err)
            return
        if "refused" in self.note.value or "ValueError" in self.note.value:
            self.note.value = ""

    def arguments(self) -> dict[str, Any]:
        """The arguments to send; ``ValueError`` naming the argument when one is not acceptable."""
        return {pname: control.get() for pname, control in self.controls.items()}

    def set_busy(self, busy: bool) -> None:
        with self.button.hold_sync():
            self.button.icon = "spinner" if busy else "play"
            self.button.button_style = "warning" if busy else ""
        (self.button.add_class if busy else self.button.remove_class)("pyrolab-Panel-busy")

    def show_result(self, value: Any, x: Any = None, x_unit: str = "") -> None:
        previous = self.result.children[0] if self.result.children else None
        shown = result_view(value, self.unit, previous, x, x_unit)
        if shown is not previous:
            self.result.children = (shown,)
        self.note.value = ""

    def show_error(self, err: BaseException) -> None:
        shown = widgets.HTML(error_text(err))
        shown.add_class("pyrolab-Panel-error")
        self.result.children = (shown,)
        self.note.value = ""


def values_table(title: str, rows: Mapping[str, PropertyRow]) -> str:
    """The values a panel shows, as an HTML table: what a saved notebook shows where widgets do not render."""
    body = "".join(
        f"<tr><td><code>{html.escape(name)}</code></td>"
        f"<td>{html.escape(_plain(row.last_value))}</td><td>{html.escape(row.unit)}</td>"
        f"<td>{html.escape(limits_text(row.schema))}</td></tr>"
        for name, row in rows.items())
    return (f"<div class='pyrolab-Panel-static'><p>{title}</p>"
            f"<table><tr><th>property</th><th>value</th><th>unit</th><th>limits</th></tr>{body}</table></div>")


def _plain(value: Any) -> str:
    return "" if value is None else format_value(value)
