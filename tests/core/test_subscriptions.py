"""Live truth, in real processes: what a subscriber sees after calls, setters, motion and races."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from conftest import wait_for

from pyrolab_jupyter import Lab
from pyrolab_jupyter.core.publish import CALL_PROPERTY, LOCK_PROPERTY

pytestmark = pytest.mark.network


class Seen:
    """Everything a subscription delivered, in order, with the local arrival time."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any, float]] = []
        self.mutex = threading.Lock()

    def __call__(self, prop: str, value: Any, stamp: float) -> None:
        with self.mutex:
            self.items.append((prop, value, time.monotonic()))

    def values(self, prop: str) -> list[Any]:
        with self.mutex:
            return [v for p, v, _ in self.items if p == prop]

    def last(self, prop: str) -> Any:
        found = self.values(prop)
        return found[-1] if found else None

    def arrival(self, prop: str, value: Any) -> float | None:
        with self.mutex:
            return next((t for p, v, t in self.items if p == prop and v == value), None)


def test_current_values_come_first(lab, nameserver, daemon_factory):
    daemon_factory({"t.laser": "pyrolab_jupyter.instruments.sim:Laser"}, nameserver.address)
    laser = lab.connect("t.laser")
    laser.set_power(4.0)
    seen = Seen()
    subscription = laser.subscribe(seen)
    props = set(laser.describe()["properties"])
    wait_for(lambda: props <= {p for p, _, _ in seen.items}, timeout=10)
    first = [p for p, _, _ in seen.items[: len(props) + 1]]
    assert set(first) == props | {LOCK_PROPERTY}  # the snapshot, before any change
    assert seen.last("power") == 4.0 and seen.last(LOCK_PROPERTY) is None
    subscription.close()


_OTHER_CLIENT = """
import sys
from pyrolab_jupyter import Lab
laser = Lab(sys.argv[1]).connect("t.laser")
laser.set_power(float(sys.argv[2]))
print("done", flush=True)
"""


def test_another_clients_method_call_reaches_a_subscriber(lab, nameserver, daemon_factory):
    daemon_factory({"t.laser": "pyrolab_jupyter.instruments.sim:Laser"}, nameserver.address)
    laser = lab.connect("t.laser")
    laser.turn_on()
    seen = Seen()
    subscription = laser.subscribe(seen)
    wait_for(lambda: seen.last("power") == 0.0, timeout=10)
    out = subprocess.run([sys.executable, "-c", _OTHER_CLIENT, nameserver.address, "7.5"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "done", out.stderr
    wait_for(lambda: seen.last("power") == 7.5 and seen.last("emitted_power") == 7.5, timeout=10)
    call = seen.last(CALL_PROPERTY)
    assert call["member"] == "set_power" and call["outcome"] == "ok"
    assert call["changes"] == ["power", "emitted_power"]
    assert f"(pid {os.getpid()}," not in call["caller"]  # another process's call, named as such
    subscription.close()


def test_a_failed_call_is_announced_with_its_outcome(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    seen = Seen()
    subscription = remote.subscribe(seen)
    try:
        remote.fail_custom()
    except Exception:
        pass
    wait_for(lambda: (seen.last(CALL_PROPERTY) or {}).get("member") == "fail_custom", timeout=10)
    assert "DeviceFault: interlock open" in seen.last(CALL_PROPERTY)["outcome"]
    subscription.close()


def test_a_setter_refreshes_the_derived_property(lab, nameserver, daemon_factory):
    daemon_factory({"t.laser": "pyrolab_jupyter.instruments.sim:Laser"}, nameserver.address)
    laser = lab.connect("t.laser")
    laser.power = 10.0
    seen = Seen()
    subscription = laser.subscribe(seen)
    wait_for(lambda: seen.last("emitted_power") == 0.0, timeout=10)
    Lab(nameserver.address).connect("t.laser").on = True
    wait_for(lambda: seen.last("on") is True and seen.last("emitted_power") == 10.0, timeout=10)
    laser.mode = "pulsed"
    wait_for(lambda: seen.last("emitted_power") == 5.0, timeout=10)
    subscription.close()


def test_a_moving_stage_announces_position_and_the_end_of_the_move(lab, nameserver, daemon_factory):
    daemon_factory({"t.stage": "pyrolab_jupyter.instruments.sim:Stage"}, nameserver.address)
    stage = lab.connect("t.stage")
    stage.velocity = 10.0
    seen = Seen()
    subscription = stage.subscribe(seen)
    wait_for(lambda: seen.last("moving") is False, timeout=10)
    stage.move_to(15.0, wait=False)  # 1.5 s; nobody waits for it: the daemon's poller sees it through
    wait_for(lambda: seen.last("moving") is False and seen.last("position") == 15.0, timeout=15)
    positions = seen.values("position")
    assert any(0.0 < p < 15.0 for p in positions), positions  # seen while moving
    assert True in seen.values("moving")
    subscription.close()


def test_a_change_racing_the_subscription_is_not_missed(lab, nameserver, daemon_factory):
    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    other = Lab(nameserver.address).connect("t.dummy")
    assert remote.power == 1.0  # the read a panel makes first
    other.set_power(2.0)  # a change between the read and the subscription
    seen = Seen()
    subscription = remote.subscribe(seen)
    wait_for(lambda: seen.values("power"), timeout=10)
    assert seen.values("power")[0] == 2.0  # the current value, not a stale one
    final = 40

    def hammer() -> None:
        for i in range(3, final + 1):
            other.set_power(float(i))

    worker = threading.Thread(target=hammer)
    worker.start()
    second = Seen()
    racing = remote.subscribe(second)  # subscribing while the value changes
    worker.join(60)
    wait_for(lambda: second.last("power") == float(final) and seen.last("power") == float(final), timeout=10)
    subscription.close()
    racing.close()


def test_nothing_is_polled_without_subscribers_and_polling_stops_after(lab, nameserver, daemon_factory):
    daemon_factory({"t.stage": "pyrolab_jupyter.instruments.sim:Stage"}, nameserver.address)
    stage = lab.connect("t.stage")
    seen = Seen()
    subscription = stage.subscribe(seen)
    wait_for(lambda: seen.values("position"), timeout=10)
    subscription.close()
    count = len(seen.items)
    stage.velocity = 50.0
    stage.move_to(20.0, wait=True)
    time.sleep(0.5)
    assert len(seen.items) == count  # a closed subscription hears nothing more


def test_a_dropped_subscription_renews_itself_after_a_quiet_period(lab, nameserver, daemon_factory):
    from pyrolab_jupyter.core.subscriptions import KEEPALIVE

    daemon_factory({"t.dummy": "labservices:Dummy"}, nameserver.address)
    remote = lab.connect("t.dummy")
    seen = Seen()
    subscription = remote.subscribe(seen)
    wait_for(lambda: seen.values("power"), timeout=10)
    # what the daemon does to a subscriber it could not reach in time
    remote._pyrolab_call("control", "pyrolab_unsubscribe", (subscription.token,), {})
    assert remote._pyrolab_call("control", "pyrolab_subscribed", (subscription.token,), {}) is False
    Lab(nameserver.address).connect("t.dummy").set_power(9.0)
    wait_for(lambda: seen.last("power") == 9.0, timeout=3 * KEEPALIVE + 10)
    assert remote._pyrolab_call("control", "pyrolab_subscribed", (subscription.token,), {}) is True
    subscription.close()


def test_arrays_too_large_to_push_are_read_again_out_of_band(lab, nameserver, daemon_factory):
    import numpy as np

    daemon_factory({"t.frames": "labservices:Frames"}, nameserver.address)
    camera = lab.connect("t.frames")
    seen = Seen()
    subscription = camera.subscribe(seen)

    def frames() -> list[Any]:
        return [v for v in seen.values("frame") if isinstance(v, np.ndarray)]

    wait_for(lambda: frames(), timeout=10)  # the snapshot's frame, read through the bulk path
    assert frames()[0].shape == (131072,) and not frames()[0].any()
    camera.shoot(2.0)  # announced with changes=["frame"]: re-read
    wait_for(lambda: any(f[0] == 2.0 for f in frames()), timeout=10)
    camera.expose_and_tell(3.0)  # notify() of a large array: a marker, then a re-read
    wait_for(lambda: any(f[0] == 3.0 for f in frames()), timeout=10)
    assert all(isinstance(v, np.ndarray) and v.shape == (131072,) for v in seen.values("frame"))  # no marker leaks
    subscription.close()
