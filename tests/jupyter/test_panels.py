"""Panels against a real nameserver and daemon in this process: clicks, errors, plots, live values."""

from __future__ import annotations

import threading
import time
from typing import Annotated, Literal

import ipywidgets as widgets
import numpy as np
import pytest

from pyrolab_jupyter.core.client import Lab
from pyrolab_jupyter.core.service import Range, Service, Unit, expose
from pyrolab_jupyter.hosting import start_daemon, start_nameserver
from pyrolab_jupyter.jupyter.panels import Panel, panel

pytestmark = [
    pytest.mark.network,
    # bqplot's own traits, on import
    pytest.mark.filterwarnings("ignore:metadata .* was set from the constructor:DeprecationWarning"),
]


class Bench(Service):
    """A test bench with a little of everything."""

    thread_safe = True  # the daemon may run calls side by side, so only the panel could serialise them

    def __init__(self) -> None:
        self._power = 1.0
        self._mode = "cw"
        self.temperature_c = 20.0
        self.calls: list[float] = []
        self.release = threading.Event()

    @expose
    @property
    def power(self) -> Annotated[float, Range(0, 50), Unit("mW")]:
        """Power setpoint."""
        return self._power

    @power.setter
    def power(self, mw: Annotated[float, Range(0, 50), Unit("mW")]) -> None:
        self._power = mw

    @expose
    @property
    def mode(self) -> Literal["cw", "pulsed"]:
        """Operating mode."""
        return self._mode

    @mode.setter
    def mode(self, value: Literal["cw", "pulsed"]) -> None:
        self._mode = value

    @expose
    @property
    def temperature(self) -> Annotated[float, Unit("C")]:
        """Drifts by itself."""
        return self.temperature_c

    def drift(self, value: float) -> None:
        self.temperature_c = value
        self.notify("temperature", value)

    @expose
    def set_power(self, mw: Annotated[float, Range(0, 50), Unit("mW")] = 2.0) -> None:
        """Set the power."""
        self.calls.append(mw)
        self._power = mw
        self.notify("power", mw)

    @expose
    def reading(self) -> Annotated[float, Unit("mW")]:
        """One reading."""
        return 0.25

    @expose
    def trace(self, n: Annotated[int, Range(1, 10_000)] = 100) -> np.ndarray:
        """A 1-D trace."""
        return np.sin(np.linspace(0, 6, n))

    @expose
    def image(self) -> np.ndarray:
        """A 2-D image."""
        return np.arange(12.0).reshape(3, 4)

    @expose
    def fail(self) -> None:
        """Always fails."""
        raise RuntimeError("the shutter is jammed")

    @expose
    def slow(self) -> str:
        """Blocks until the test releases it."""
        self.release.wait(10)
        return "finished"


def wait_for(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def bench():
    service = Bench()
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=1.0)
    try:
        daemon = start_daemon({"test.bench": service}, nameserver=ns.uri)
        try:
            yield service, Lab(ns.uri)
        finally:
            service.release.set()
            daemon.stop()
    finally:
        ns.stop()


@pytest.fixture
def opened(bench):
    service, lab = bench
    remote = lab.connect("test.bench")
    shown = panel(remote)
    try:
        yield service, lab, shown
    finally:
        shown.close()
        remote.disconnect()


def _text_of(widget) -> str:
    return widget.value if hasattr(widget, "value") else ""


def test_layout_header_sections_and_css_classes(opened):
    _, _, shown = opened
    assert isinstance(shown, Panel) and isinstance(shown, widgets.VBox)
    assert "pyrolab-Panel" in shown._dom_classes
    header = shown.children[0]
    assert "test.bench" in header.children[0].value and "Bench" in header.children[0].value
    assert shown.status.value == "online" and shown.lock_label.value == "unlocked"
    assert set(shown.properties) == {"power", "mode", "temperature"}
    assert set(shown.methods) == {"set_power", "reading", "trace", "image", "fail", "slow"}
    assert all(isinstance(s, widgets.Accordion) for s in shown.children[1:])
    assert shown.properties["temperature"].control.value_widget.disabled  # read-only
    assert shown.properties["power"].control.get() == 1.0  # current value read on build
    assert shown.methods["set_power"].controls["mw"].get() == 2.0  # default pre-filled
    assert "pyrolab-Panel-call" in shown.methods["set_power"].button._dom_classes
    assert shown.mode == "push"


def test_click_reaches_the_instrument_and_shows_the_result(opened):
    service, _, shown = opened
    row = shown.methods["set_power"]
    row.controls["mw"].value_widget.value = 7.5
    row.button.click()
    wait_for(lambda: row.calls == 1, what="the call to finish")
    assert service.calls == [7.5]
    reading = shown.methods["reading"]
    reading.button.click()
    wait_for(lambda: reading.calls == 1, what="reading")
    assert reading.result.children[0].value == "0.25 mW"


def test_a_remote_error_is_shown_with_type_and_message_not_raised(opened):
    _, _, shown = opened
    row = shown.methods["fail"]
    row.button.click()  # must not raise
    wait_for(lambda: row.calls == 1, what="the failing call")
    shown_error = row.result.children[0]
    assert "pyrolab-Panel-error" in shown_error._dom_classes
    assert "RuntimeError" in shown_error.value and "the shutter is jammed" in shown_error.value


def test_an_out_of_range_argument_is_refused_by_the_daemon_and_shown(opened):
    service, _, shown = opened
    row = shown.methods["trace"]
    row.controls["n"].value_widget.value = 10_000
    bad = shown.methods["set_power"]
    bad.controls["mw"].value_widget.max = 100  # get past the widget's own bound
    bad.controls["mw"].value_widget.value = 99
    bad.button.click()
    wait_for(lambda: bad.calls == 1, what="the refused call")
    assert "InvalidArgument" in bad.result.children[0].value
    assert "above the maximum 50" in bad.result.children[0].value
    assert service.calls == []


def test_array_results_are_plotted_with_bqplot(opened):
    import bqplot

    _, _, shown = opened
    trace = shown.methods["trace"]
    trace.controls["n"].value_widget.value = 50
    trace.button.click()
    wait_for(lambda: trace.calls == 1, what="trace")
    figure = trace.result.children[0]
    assert isinstance(figure, bqplot.Figure) and isinstance(figure.marks[0], bqplot.Lines)
    assert len(figure.marks[0].y) == 50
    trace.controls["n"].value_widget.value = 80
    trace.button.click()
    wait_for(lambda: trace.calls == 2, what="second trace")
    assert trace.result.children[0] is figure and len(figure.marks[0].y) == 80  # updated in place
    image = shown.methods["image"]
    image.button.click()
    wait_for(lambda: image.calls == 1, what="image")
    heat = image.result.children[0].marks[0]
    assert isinstance(heat, bqplot.HeatMap) and np.asarray(heat.color).shape == (3, 4)


def test_calls_run_off_the_main_thread_and_a_second_press_is_refused(opened):
    service, _, shown = opened
    row = shown.methods["slow"]
    started = time.monotonic()
    row.button.click()
    assert time.monotonic() - started < 5  # the call waits for service.release: returning proves it runs elsewhere
    assert "pyrolab-Panel-busy" in row.button._dom_classes and row.button.icon == "spinner"
    row.button.click()  # refused visibly
    assert "Busy" in row.note.value and "refused" in row.note.value
    shown.methods["reading"].button.click()  # the rest of the panel still works meanwhile
    wait_for(lambda: shown.methods["reading"].calls == 1, what="another call during the slow one")
    service.release.set()
    wait_for(lambda: row.calls == 1, what="the slow call")
    assert row.result.children[0].value == "finished"
    assert "pyrolab-Panel-busy" not in row.button._dom_classes and row.button.icon == "play"


def test_setting_a_writable_property_from_its_widget(opened):
    service, _, shown = opened
    mode = shown.properties["mode"]
    mode.control.value_widget.value = "pulsed"
    wait_for(lambda: service._mode == "pulsed", what="the setter")
    power = shown.properties["power"]
    power.control.value_widget.value = 33.0
    wait_for(lambda: service._power == 33.0, what="the power setter")


def test_another_clients_change_appears_in_the_open_panel(opened):
    service, lab, shown = opened
    other = lab.connect("test.bench")
    try:
        other.power = 42.0  # setters announce by themselves
        wait_for(lambda: shown.properties["power"].control.get() == 42.0, timeout=2, what="the pushed power")
        other.mode = "pulsed"
        wait_for(lambda: shown.properties["mode"].control.get() == "pulsed", timeout=2, what="the pushed mode")
    finally:
        other.disconnect()
    service.drift(25.5)  # a value that changes by itself, announced with notify()
    wait_for(lambda: shown.properties["temperature"].control.get() == 25.5, timeout=2, what="notify")


def test_polling_when_push_is_off(bench):
    service, lab = bench
    remote = lab.connect("test.bench")
    shown = panel(remote, push=False, poll_interval=0.05)
    try:
        assert shown.mode == "poll"
        service.temperature_c = 30.0  # no announcement: only a poll can see it
        wait_for(lambda: shown.properties["temperature"].control.get() == 30.0, timeout=2, what="the poll")
    finally:
        shown.close()
        remote.disconnect()
    assert not shown._poller.is_alive() or (shown._poller.join(1) is None and not shown._poller.is_alive())


def test_close_ends_live_updates(bench):
    service, lab = bench
    remote = lab.connect("test.bench")
    shown = panel(remote)
    subscription = shown._subscription
    shown.close()
    shown.close()  # idempotent
    assert subscription.closed and shown.closed
    before = shown.updates
    service.drift(99.0)
    time.sleep(0.2)  # nothing should arrive; a short, bounded wait for a negative
    assert shown.updates == before
    remote.disconnect()


def test_lock_and_unlock_buttons(opened):
    _, lab, shown = opened
    shown.lock_button.click()
    wait_for(lambda: shown.lock_label.value.startswith("locked by"), what="lock")
    assert "this kernel" in shown.lock_label.value
    other = lab.connect("test.bench")
    try:
        assert other.lock_info()["mine"] is True  # a lock belongs to the process
    finally:
        other.disconnect()
    shown.unlock_button.click()
    wait_for(lambda: shown.lock_label.value == "unlocked", what="unlock")


def test_bad_json_input_is_shown_not_raised(opened):
    _, _, shown = opened
    row = shown.methods["set_power"]
    row.controls["mw"].value_widget.value = 3.0
    # a parse error in any parameter stays in the panel
    from pyrolab_jupyter.jupyter.widget_mapping import Field, control_for

    row.controls["mw"] = control_for(Field("mw", {"type": "array"}))
    row.controls["mw"].value_widget.value = "[1,"
    row.button.click()
    assert "ValueError" in row.result.children[0].value and "not valid JSON" in row.result.children[0].value
    assert not row.busy.locked()


_OTHER_HOLDER = """
import sys
from pyrolab_jupyter import Lab
Lab(sys.argv[1]).connect("test.bench").lock(lease=30)
print("locked", flush=True)
sys.stdin.read()
"""


def test_another_process_taking_the_lock_shows_in_the_open_panel(opened):
    import subprocess
    import sys

    _, lab, shown = opened
    holder = subprocess.Popen([sys.executable, "-c", _OTHER_HOLDER, lab.address],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        wait_for(lambda: f"pid {holder.pid}" in shown.lock_label.value, what="the other holder shown")
        assert "this kernel" not in shown.lock_label.value
        holder.kill()
        holder.wait(10)
        wait_for(lambda: shown.lock_label.value == "unlocked", what="release when the holder died")
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdin.close()
        holder.stdout.close()


def test_open_panel_follows_a_restarted_daemon(monkeypatch):
    """The keepalive read finds the daemon at its new address; values show again (push renewal: tests/core)."""
    from pyrolab_jupyter.jupyter import panels

    monkeypatch.setattr(panels, "KEEPALIVE_S", 0.2)
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=1.0)
    handles = [start_daemon({"t.dummy": "labservices:Dummy"}, nameserver=ns.uri, spawn=True)]
    try:
        lab = Lab(ns.uri)
        shown = panel(lab.connect("t.dummy"), poll_interval=0.01)
        assert shown.mode == "push"
        handles[0].process.kill()
        handles[0].process.wait(10)
        handles.append(start_daemon({"t.dummy": "labservices:Dummy"}, nameserver=ns.uri, spawn=True))
        other = Lab(ns.uri).connect("t.dummy")
        wait_for(lambda: shown.remote._pyrolab_uri == other._pyrolab_uri, what="the panel reconnected")
        other.power = 42
        wait_for(lambda: shown.properties["power"].last_value == 42.0, what="a push from the new daemon")
        shown.close()
        other.disconnect()
    finally:
        for handle in handles:
            handle.stop()
        ns.stop()


def test_a_remote_service_as_a_result_displays_its_panel(opened):
    _, lab, _ = opened
    remote = lab.connect("test.bench")
    try:
        bundle = remote._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
    finally:
        remote.disconnect()


def test_a_panel_shows_the_instance_s_narrowed_range():
    """Laser(max_power_mw=20): the slider ends at 20, not at the class's 50 (issue 16)."""
    from pyrolab_jupyter.instruments.sim import Laser

    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=1.0)
    try:
        daemon = start_daemon({"test.laser": Laser(max_power_mw=20)}, nameserver=ns.uri)
        try:
            remote = Lab(ns.uri).connect("test.laser")
            shown = panel(remote)
            try:
                assert shown.methods["set_power"].controls["mw"].value_widget.max == 20
                assert shown.properties["power"].control.value_widget.max == 20
                assert shown.properties["wavelength"].control.value_widget.max == 1630  # not narrowed
            finally:
                shown.close()
                remote.disconnect()
        finally:
            daemon.stop()
    finally:
        ns.stop()
