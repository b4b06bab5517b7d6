"""Readable times: what summaries, panels and lock_info() show people."""

from __future__ import annotations

import time

from pyrolab_jupyter.core.timefmt import ago, clock, until


def test_ago_reads_like_a_person_would_say_it():
    now = 1_800_000_000.0
    assert ago(now - 0.3, now) == "just now"
    assert ago(now - 3.4, now) == "3 s ago"
    assert ago(now - 125, now) == "2 min ago"
    assert ago(now - 7300, now) == "2 h ago"
    assert ago(now - 3 * 86400, now) == "3 d ago"
    assert ago(now + 10, now) == "in 10 s"
    assert ago(None) == "-"
    assert ago(time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 60))) in ("1 min ago", "59 s ago")


def test_until_gives_the_local_clock_time():
    noon = time.mktime((2026, 6, 1, 12, 0, 0, 0, 0, -1))  # local noon
    assert until(noon + 120, noon) == "until 12:02"
    assert clock(noon + 86400 + 60, noon) == time.strftime("%a", time.localtime(noon + 86400)) + " 12:01"
    assert clock(noon + 40 * 86400, noon).startswith("2026-07-")  # a date when it is weeks away
    assert until(None) == "no expiry"
