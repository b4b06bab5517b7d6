"""The coalescing mailbox both ends of a subscription use."""

from __future__ import annotations

import threading

from pyrolab_jupyter.core.mailbox import Mailbox
from pyrolab_jupyter.core.publish import merge_calls


def test_latest_value_per_key_and_older_stamps_lose():
    box = Mailbox()
    for i in range(1000):
        box.put("power", i, float(i))
    box.put("power", -1, 5.0)  # stamped before the value waiting: ignored
    box.put("on", True, 1.0)
    assert box.take(timeout=1) == {"power": (999, 999.0), "on": (True, 1.0)}
    assert box.take(timeout=0.01) == {}


def test_call_announcements_merge_what_they_may_change():
    box = Mailbox()
    box.put("c", {"member": "a", "changes": ["x"]}, 1.0, merge_calls)
    box.put("c", {"member": "b", "changes": ["y", "x"]}, 2.0, merge_calls)
    assert box.take(timeout=1)["c"][0] == {"member": "b", "changes": ["x", "y"]}
    box.put("c", {"member": "a", "changes": ["x"]}, 1.0, merge_calls)
    box.put("c", {"member": "b", "changes": None}, 2.0, merge_calls)  # None: anything may have changed
    assert box.take(timeout=1)["c"][0]["changes"] is None


def test_close_wakes_a_waiting_taker():
    box = Mailbox()
    got: list[object] = []
    taker = threading.Thread(target=lambda: got.append(box.take()))
    taker.start()
    box.close()
    taker.join(5)
    assert got == [None] and not taker.is_alive()
    box.put("x", 1, 1.0)
    assert box.take(timeout=0.01) is None
