"""Readable times for people: ``3 s ago``, ``until 14:02``; summaries, panels and ``lock_info()`` use them.

Epoch seconds stay in the data (they compare and serialise); these helpers only
render them, relative to now or as a local wall-clock time.
"""

from __future__ import annotations

import datetime
import time

__all__ = ["ago", "clock", "duration", "until"]

_UNITS = ((86400.0, "d"), (3600.0, "h"), (60.0, "min"), (1.0, "s"))


def _span(seconds: float) -> str:
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return "0 s"


def _epoch(when: float | str) -> float | None:
    """Epoch seconds from a number or ISO text (a naive time is local); None if unreadable."""
    if isinstance(when, (int, float)):
        return float(when)
    try:
        moment = datetime.datetime.fromisoformat(str(when))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.astimezone()).timestamp()


def ago(when: float | str | None, now: float | None = None) -> str:
    """``"3 s ago"``, ``"5 min ago"``, ``"just now"`` from epoch seconds or ISO text; ``"-"`` for never.

    A future time reads ``"in 3 s"``; text that is no time is returned as it is.
    """
    if when is None or when == "":
        return "-"
    epoch = _epoch(when)
    if epoch is None:
        return str(when)
    delta = (time.time() if now is None else now) - epoch
    if abs(delta) < 1.0:
        return "just now"
    return f"{_span(delta)} ago" if delta > 0 else f"in {_span(-delta)}"


def clock(epoch: float, now: float | None = None) -> str:
    """Local wall-clock time: ``"14:02"`` today, ``"Tue 14:02"`` within a week, else the date too."""
    moment = time.localtime(float(epoch))
    today = time.localtime(time.time() if now is None else now)
    if moment[:3] == today[:3]:
        return time.strftime("%H:%M", moment)
    if abs(float(epoch) - time.mktime(today)) < 6 * 86400:
        return time.strftime("%a %H:%M", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


def until(epoch: float | None, now: float | None = None) -> str:
    """``"until 14:02"`` for a lease end; ``"no expiry"`` for None."""
    if epoch is None:
        return "no expiry"
    return f"until {clock(epoch, now)}"


def duration(seconds: float) -> str:
    """``"3 min"``, ``"2 h"``: how long something has been running, in its largest unit."""
    return _span(max(0.0, seconds))
