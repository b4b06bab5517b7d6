"""A coalescing mailbox: the latest value per key, taken in one batch; bounded by the number of keys.

Both ends of a subscription use one: the daemon keeps one per subscriber (so a
slow subscriber costs one value per property, never a growing queue), and the
client keeps one per subscription (so a slow callback never holds up the
daemon's delivery). A value stamped older than the one waiting is ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Mailbox"]

Merge = Callable[[Any, Any], Any]  # (waiting value, new value) -> value to keep


class Mailbox:
    """Latest ``(value, stamp)`` per key until taken; ``close()`` wakes and ends the taker."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Any, float]] = {}
        self._cond = threading.Condition()
        self.closed = False

    def put(self, key: str, value: Any, stamp: float, merge: Merge | None = None) -> None:
        with self._cond:
            waiting = self._items.get(key)
            if waiting is not None:
                if merge is not None:
                    value = merge(waiting[0], value)
                elif waiting[1] > stamp:
                    return  # a newer value is already waiting
            self._items[key] = (value, max(stamp, waiting[1]) if waiting else stamp)
            self._cond.notify()

    def take(self, timeout: float | None = None) -> dict[str, tuple[Any, float]] | None:
        """Everything waiting (blocks until something is, or ``timeout``: then ``{}``); None once closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items and not self.closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return {}
                self._cond.wait(left)
            if self.closed:
                return None
            items, self._items = self._items, {}
            return items

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._items.clear()
            self._cond.notify_all()
