"""A panel's header: name and class, a coloured status badge, one Lock/Unlock toggle with the holder, Stop.

Widgets and what they show, nothing more: the panel decides when (its
threads call ``show_status``, ``show_lock`` and ``show_change``) and wires the
buttons. Times read as people say them: ``until 14:02``, ``at 14:02``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from pyrolab_jupyter.core.timefmt import clock, until
from pyrolab_jupyter.jupyter.rows import note

__all__ = ["STATES", "Header", "change_text", "holder_text"]

STATES = {"online": "#2e7d32", "offline": "#c62828", "unknown": "#757575"}  # the badge's words and colours


def _badge(state: str) -> str:
    return (f"<span class='pyrolab-Panel-badge pyrolab-Panel-badge-{state}' style='background:{STATES[state]};"
            f"color:#fff;padding:1px 9px;border-radius:9px;font-weight:600'>{state}</span>")


def holder_text(info: Mapping[str, Any] | None) -> str:
    """``unlocked`` or ``locked by alice@pc (pid 42) (this kernel) until 14:02``."""
    if not info or not info.get("holder"):
        return "unlocked"
    mine = " (this kernel)" if info.get("mine") else ""
    expires = info.get("expires")
    return f"locked by {info['holder']}{mine}" + (f" {until(float(expires))}" if expires else "")


def change_text(call: Any, stamp: float) -> str:
    """``set_power() by alice@pc (pid 42) at 14:02``, with the error when the call failed."""
    if not isinstance(call, Mapping):
        return ""
    member = str(call.get("member", "?")) + ("()" if call.get("kind") == "call" else " set")
    outcome = call.get("outcome")
    failed = f" failed ({outcome})" if outcome and outcome != "ok" else ""
    return (f"<small>last change: <code>{html.escape(member)}</code> by {html.escape(str(call.get('caller')))} "
            f"at {html.escape(clock(stamp) if stamp else '?')}{html.escape(failed)}</small>")


class Header:
    """The header's widgets; ``widget`` is the row to lay out."""

    def __init__(self, name: str, class_name: str, doc: str, state: str, locked_by: str | None,
                 stop_method: str | None) -> None:
        self.status = widgets.HTML(_badge(state),
                                   _dom_classes=("pyrolab-Panel-status", f"pyrolab-Panel-status-{state}"))
        self.lock_label = widgets.Label(holder_text({"holder": locked_by} if locked_by else None),
                                        _dom_classes=("pyrolab-Panel-lock",))
        self.lock_button = widgets.Button(description="Lock", icon="lock", layout=widgets.Layout(width="auto"),
                                          tooltip="lock this service for this kernel (press again to unlock)",
                                          _dom_classes=("pyrolab-Panel-lock-button",))
        self.note = note()
        self.last_change = widgets.HTML("", _dom_classes=("pyrolab-Panel-last-change",))
        title = widgets.HTML(f"<b>{html.escape(name)}</b> <code>{html.escape(class_name)}</code>",
                             tooltip=doc or None, _dom_classes=("pyrolab-Panel-title",))
        parts = [title, self.status, self.lock_button, self.lock_label]
        self.stop_button: widgets.Button | None = None
        if stop_method is not None:
            self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger",
                                              tooltip=f"call {stop_method}() (allowed while locked)",
                                              layout=widgets.Layout(width="auto"), _dom_classes=("pyrolab-Panel-stop",))
            parts.append(self.stop_button)
        self.widget = widgets.HBox([*parts, self.note, self.last_change],
                                   layout=widgets.Layout(align_items="center", grid_gap="8px", flex_flow="row wrap"),
                                   _dom_classes=("pyrolab-Panel-header",))

    def show_status(self, state: str) -> None:
        """The badge reads ``state`` (online, offline or unknown), in its colour, with its CSS class."""
        self.status.value = _badge(state)
        for other in STATES:
            (self.status.add_class if other == state else self.status.remove_class)(f"pyrolab-Panel-status-{other}")

    def show_lock(self, info: Mapping[str, Any] | None) -> None:
        """The holder beside the toggle, which reads Unlock when this process holds the lock, else Lock."""
        text = holder_text(info)
        if self.lock_label.value != text:
            self.lock_label.value = text
        mine = bool(info and info.get("mine"))
        with self.lock_button.hold_sync():
            self.lock_button.description = "Unlock" if mine else "Lock"
            self.lock_button.icon = "unlock" if mine else "lock"

    def show_change(self, call: Any, stamp: float) -> None:
        """The last state-changing call a subscription announced, and who made it."""
        self.last_change.value = change_text(call, stamp)
