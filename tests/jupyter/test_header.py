"""The panel header's words: badge, holder, last change (no network, no frontend)."""

from __future__ import annotations

import re
import time

from pyrolab_jupyter.jupyter.header import Header, change_text, holder_text


def test_holder_text_names_the_holder_and_when_the_lease_ends():
    assert holder_text(None) == "unlocked"
    assert holder_text({"holder": "alice@pc (pid 4)", "mine": False}) == "locked by alice@pc (pid 4)"
    text = holder_text({"holder": "me (pid 1)", "mine": True, "expires": time.time() + 600})
    assert re.fullmatch(r"locked by me \(pid 1\) \(this kernel\) until \d\d:\d\d", text), text


def test_change_text_says_what_who_and_when():
    call = {"member": "set_power", "kind": "call", "caller": "bob@pc (pid 9)", "outcome": "ok"}
    text = change_text(call, time.time())
    assert "<code>set_power()</code> by bob@pc (pid 9) at " in text and "failed" not in text
    failed = change_text({**call, "member": "power", "kind": "set", "outcome": "InvalidArgument: 80"}, time.time())
    assert "<code>power set</code>" in failed and "failed (InvalidArgument: 80)" in failed
    assert change_text("not a call", 0.0) == ""


def test_the_badge_shows_its_word_and_the_toggle_follows_the_lock():
    header = Header("lab.laser", "sim:Laser", "A laser.", "online", None, "stop")
    assert ">online<" in header.status.value and "pyrolab-Panel-status-online" in header.status._dom_classes
    header.show_status("offline")
    assert ">offline<" in header.status.value and "#c62828" in header.status.value
    assert "pyrolab-Panel-status-offline" in header.status._dom_classes
    assert "pyrolab-Panel-status-online" not in header.status._dom_classes
    header.show_lock({"holder": "me (pid 1)", "mine": True, "expires": None})
    assert header.lock_button.description == "Unlock" and header.lock_label.value == "locked by me (pid 1) (this kernel)"
    header.show_lock(None)
    assert header.lock_button.description == "Lock" and header.lock_label.value == "unlocked"
    assert header.stop_button is not None and Header("x", "y", "", "unknown", None, None).stop_button is None
