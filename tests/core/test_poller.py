"""The daemon-side poller: only subscribed services, only changed values, errors as values."""

from __future__ import annotations

import threading

from conftest import wait_for

from pyrolab_jupyter.core.poller import SKIP, Poller


def test_polls_only_while_subscribed_and_publishes_only_changes():
    published: list[tuple[str, str, object]] = []
    active: set[str] = set()
    reads = {"n": 0}
    value = {"x": 1.0}

    def read(prop: str) -> object:
        reads["n"] += 1
        return value["x"]

    poller = Poller(lambda s, p, v: published.append((s, p, v)), lambda: set(active))
    poller.add("stage", {"position": 0.01}, read)
    try:
        poller.wake()
        threading.Event().wait(0.1)
        assert reads["n"] == 0  # nobody subscribes: nothing is read
        active.add("stage")
        poller.wake()
        wait_for(lambda: published == [("stage", "position", 1.0)], timeout=5)
        count = reads["n"]
        wait_for(lambda: reads["n"] > count + 5, timeout=5)
        assert published == [("stage", "position", 1.0)]  # unchanged values are not sent
        value["x"] = 2.0
        wait_for(lambda: published[-1] == ("stage", "position", 2.0), timeout=5)
        active.clear()
        poller.wake()
        threading.Event().wait(0.1)
        count = reads["n"]
        threading.Event().wait(0.2)
        assert reads["n"] == count  # stopped with the last subscriber
    finally:
        poller.stop()


def test_errors_are_published_once_and_busy_reads_skipped():
    published: list[tuple[str, str, object]] = []
    outcomes = iter([KeyError("x"), KeyError("x"), SKIP, 3.0])

    def read(prop: str) -> object:
        return next(outcomes, 3.0)

    poller = Poller(lambda s, p, v: published.append((s, p, v)), lambda: {"s"})
    poller.add("s", {"p": 0.01}, read)
    try:
        poller.wake()
        wait_for(lambda: published and published[-1][2] == 3.0, timeout=5)
        kinds = [type(v).__name__ for _, _, v in published]
        assert kinds == ["KeyError", "float"]
    finally:
        poller.stop()
