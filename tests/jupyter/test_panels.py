"""Panels against a real nameserver and daemon in this process: clicks, errors, plots, live values."""

from __future__ import annotations

import os
import re
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
        self.stops = 0
        self.scans = 0
        self.points = 64
        self._roi = (10, 20)

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
        """Blocks until the test releases it (or stop() does)."""
        self.release.wait(10)
        return "finished"

    @expose(stop=True)
    def halt(self) -> None:
        """The stop action: ends what runs."""
        self.stops += 1
        self.release.set()

    @expose
    @property
    def roi(self) -> tuple[Annotated[int, Range(0, 100)], Annotated[int, Range(1, 100)]]:
        """A pair of numbers."""
        return self._roi

    @roi.setter
    def roi(self, value: tuple[Annotated[int, Range(0, 100)], Annotated[int, Range(1, 100)]]) -> None:
        self._roi = tuple(value)

    @expose(readonly=True)
    def time_axis(self) -> Annotated[np.ndarray, Unit("s")]:
        """Sample times of trace()."""
        return np.linspace(0, 1e-3, self.points)

    @expose(readonly=True)
    def scan(self) -> Annotated[np.ndarray, Unit("V")]:
        """A trace as long as the time axis (live mode repeats it)."""
        self.scans += 1
        return np.cos(np.linspace(0, 6, self.points))


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
    assert shown.status_text == "online" and ">online<" in shown.status.value
    assert "pyrolab-Panel-badge-online" in shown.status.value and "background" in shown.status.value
    assert shown.lock_label.value == "unlocked" and shown.lock_button.description == "Lock"
    assert set(shown.properties) == {"power", "mode", "temperature", "roi"}
    assert set(shown.methods) == {"set_power", "reading", "trace", "image", "fail", "slow", "time_axis", "scan"}
    assert shown.stop_method == "halt" and shown.stop_button is not None  # the stop action is the Stop button
    assert all(isinstance(s, widgets.Accordion) for s in shown.children[1:])
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


def test_each_property_row_reads_label_control_unit_limits(opened):
    _, _, shown = opened
    power = shown.properties["power"].widget
    assert isinstance(power, widgets.GridBox)
    label, control, unit, limits, note = power.children
    assert label.value == "power" and unit.value == "mW" and limits.value == "0 … 50" and note.value == ""
    assert control is shown.properties["power"].control.widget
    # every property row shares one column template, so the columns line up
    assert len({row.widget.layout.grid_template_columns for row in shown.properties.values()}) == 1


def test_read_only_values_are_text_not_disabled_inputs(opened):
    _, _, shown = opened
    temperature = shown.properties["temperature"]
    assert isinstance(temperature.control.value_widget, widgets.HTML)
    assert "20" in temperature.control.value_widget.value
    assert "pyrolab-Panel-readonly" in temperature.widget._dom_classes


def test_an_out_of_range_typed_value_is_refused_beside_the_control_never_clamped(opened):
    service, _, shown = opened
    power = shown.properties["power"]
    power.control.value_widget.value = 80.0  # typed into the box: above the 0..50 range
    assert "refused" in power.note.value and "above the maximum 50 mW" in power.note.value
    assert power.control.get() == 1.0  # the box shows the service's value again
    time.sleep(0.2)  # a short, bounded wait for a negative: nothing may reach the service
    assert service._power == 1.0
    row = shown.methods["set_power"]
    row.controls["mw"].value_widget.value = 99.0
    assert "above the maximum 50 mW" in row.note.value  # said at once, beside the argument
    row.button.click()
    assert "above the maximum 50 mW" in row.result.children[0].value
    assert service.calls == [] and not row.busy.locked()


def test_method_arguments_sit_beside_their_button(opened):
    _, _, shown = opened
    row = shown.methods["set_power"]
    line = row.widget
    box, slider, hint = line.children[1:4]
    assert line.children[0] is row.button
    assert box is row.controls["mw"].value_widget and box.description == "mw"  # the argument, named, then
    assert "pyrolab-Panel-argument-mw" in box._dom_classes
    assert isinstance(slider, widgets.FloatSlider) and hint.value == "mW [0 … 50]"  # its slider, unit and limits


def test_a_tuple_is_separate_number_boxes(opened):
    service, _, shown = opened
    roi = shown.properties["roi"]
    boxes = roi.control.parts
    assert [type(b).__name__ for b in boxes] == ["IntText", "IntText"] and [b.value for b in boxes] == [10, 20]
    boxes[1].value = 30
    wait_for(lambda: service._roi == (10, 30) and list(roi.last_value) == [10, 30], what="the tuple setter")
    boxes[0].value = 500
    assert "roi[0]: 500 refused: above the maximum 100" in roi.note.value
    assert [b.value for b in boxes] == [10, 30]


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
    assert figure.axes[0].label == "sample" and figure.axes[1].label == "value"  # labelled axes
    trace.controls["n"].value_widget.value = 80
    trace.button.click()
    wait_for(lambda: trace.calls == 2, what="second trace")
    assert trace.result.children[0] is figure and len(figure.marks[0].y) == 80  # updated in place
    image = shown.methods["image"]
    image.button.click()
    wait_for(lambda: image.calls == 1, what="image")
    picture = image.result.children[0].marks[0]
    assert isinstance(picture, bqplot.Image) and isinstance(picture.image, widgets.Image)
    assert picture.image.format == "png" and bytes(picture.image.value).startswith(b"\x89PNG")
    assert tuple(picture.x) == (0, 4) and tuple(picture.y) == (3, 0)  # 4 wide, 3 high, row 0 at the top
    axes = image.result.children[0].axes
    assert [a.label for a in axes[:2]] == ["x (px)", "y (px)"]
    colour_bar = axes[2]
    assert isinstance(colour_bar, bqplot.ColorAxis) and (colour_bar.scale.min, colour_bar.scale.max) == (0, 11)
    image.button.click()
    wait_for(lambda: image.calls == 2, what="a second image")
    assert image.result.children[0].marks[0] is picture  # updated in place


def test_a_trace_is_plotted_against_the_services_time_axis_with_units(opened):
    _, _, shown = opened
    scan = shown.methods["scan"]
    scan.button.click()
    wait_for(lambda: scan.calls == 1, what="scan")
    figure = scan.result.children[0]
    assert figure.axes[0].label == "time (s)" and figure.axes[1].label == "value (V)"
    assert np.isclose(np.asarray(figure.marks[0].x)[-1], 1e-3)


def test_live_mode_repeats_a_method_without_blocking_and_stops(opened):
    service, _, shown = opened
    scan = shown.methods["scan"]
    assert scan.live is not None and shown.methods["set_power"].live is None  # only array results, no required args
    scan.rate.value = 10.0
    started = time.monotonic()
    scan.live.value = True
    assert time.monotonic() - started < 5  # returned at once: the repeats run on a thread
    assert scan.button.disabled
    wait_for(lambda: service.scans >= 3, what="three live repeats")
    figure = scan.result.children[0]
    scan.live.value = False
    shown._lives["scan"].join(5)
    assert not shown._lives["scan"].is_alive() and not scan.button.disabled
    assert scan.result.children[0] is figure  # updated in place


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
    wait_for(lambda: shown.properties["temperature"].last_value == 25.5, timeout=2, what="notify")


def test_polling_when_push_is_off(bench):
    service, lab = bench
    remote = lab.connect("test.bench")
    shown = panel(remote, push=False, poll_interval=0.05)
    try:
        assert shown.mode == "poll"
        service.temperature_c = 30.0  # no announcement: only a poll can see it
        wait_for(lambda: shown.properties["temperature"].last_value == 30.0, timeout=2, what="the poll")
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


def test_one_lock_toggle_shows_the_holder(opened):
    _, lab, shown = opened
    shown.lock_button.click()
    wait_for(lambda: shown.lock_label.value.startswith("locked by"), what="lock")
    assert "this kernel" in shown.lock_label.value and shown.lock_button.description == "Unlock"
    other = lab.connect("test.bench")
    try:
        assert other.lock_info()["mine"] is True  # a lock belongs to the process
    finally:
        other.disconnect()
    shown.lock_button.click()  # the same button, now Unlock
    wait_for(lambda: shown.lock_label.value == "unlocked", what="unlock")
    assert shown.lock_button.description == "Lock"


def test_a_lease_shows_until_when(bench):
    _, lab = bench
    remote = lab.connect("test.bench")
    shown = panel(remote, lock_lease=600)
    try:
        shown.lock_button.click()
        wait_for(lambda: " until " in shown.lock_label.value, what="the lease's end")
        assert re.search(r"until \d\d:\d\d$", shown.lock_label.value), shown.lock_label.value
    finally:
        shown.close()
        remote.unlock()
        remote.disconnect()


def test_stop_button_calls_the_stop_action_while_a_call_runs(opened):
    service, _, shown = opened
    slow = shown.methods["slow"]
    slow.button.click()
    assert "pyrolab-Panel-busy" in slow.button._dom_classes
    shown.stop_button.click()
    wait_for(lambda: service.stops == 1, what="the stop action")
    wait_for(lambda: slow.calls == 1, what="the stopped call to return")
    assert "stopped at" in shown.header_note.value


def test_bad_json_input_is_shown_not_raised(opened):
    _, _, shown = opened
    row = shown.methods["set_power"]
    row.controls["mw"].value_widget.value = 3.0
    # a parse error in any parameter stays in the panel
    from pyrolab_jupyter.jupyter.controls import Field
    from pyrolab_jupyter.jupyter.widget_mapping import control_for

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


def test_ten_displays_are_one_panel_with_one_subscription(bench):
    _, lab = bench
    remote = lab.connect("test.bench")
    first = panel(remote)
    try:
        threads = threading.active_count()
        again = [panel(remote) for _ in range(10)]
        assert all(p is first for p in again)
        assert len(remote._pyrolab_subscriptions) == 1 and threading.active_count() == threads
        bundles = [p._repr_mimebundle_() for p in again]
        assert len({b["application/vnd.jupyter.widget-view+json"]["model_id"] for b in bundles}) == 1
    finally:
        first.close()
    assert remote._pyrolab_subscriptions == {}
    fresh = panel(remote)  # closed: the next display builds a new one
    try:
        assert fresh is not first and not fresh.closed
    finally:
        fresh.close()
        remote.disconnect()


def test_the_display_bundle_carries_an_html_table_of_the_values(opened):
    _, _, shown = opened
    bundle = shown._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    page = bundle["text/html"]
    assert "test.bench" in page and "<table>" in page
    assert "<td><code>power</code></td><td>1</td><td>mW</td><td>0 … 50</td>" in page
    assert "<td><code>mode</code></td><td>cw</td>" in page


def test_the_badge_says_offline_and_the_panel_recovers_by_itself(monkeypatch):
    from pyrolab_jupyter.jupyter import panels

    monkeypatch.setattr(panels, "KEEPALIVE_S", 0.2)
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=1.0)
    handles = [start_daemon({"t.dummy": "labservices:Dummy"}, nameserver=ns.uri, spawn=True)]
    try:
        lab = Lab(ns.uri)
        shown = panel(lab.connect("t.dummy", timeout=2), poll_interval=0.05)
        assert shown.status_text == "online"
        handles[0].process.kill()
        handles[0].process.wait(10)
        wait_for(lambda: shown.status_text == "offline", what="the offline badge")
        assert ">offline<" in shown.status.value and "pyrolab-Panel-status-offline" in shown.status._dom_classes
        handles.append(start_daemon({"t.dummy": "labservices:Dummy"}, nameserver=ns.uri, spawn=True))
        wait_for(lambda: shown.status_text == "online", timeout=15, what="the panel back online by itself")
        other = Lab(ns.uri).connect("t.dummy")
        other.power = 17
        wait_for(lambda: shown.properties["power"].last_value == 17.0, what="a push after recovery")
        shown.close()
        other.disconnect()
    finally:
        for handle in handles:
            handle.stop()
        ns.stop()


@pytest.fixture
def sim_lab():
    """The simulated laser and stage in a daemon of their own process."""
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=1.0)
    sim = "pyrolab_jupyter.instruments.sim"
    daemon = start_daemon({"lab.laser": f"{sim}:Laser", "lab.stage": f"{sim}:Stage"}, nameserver=ns.uri, spawn=True)
    try:
        yield Lab(ns.uri)
    finally:
        daemon.stop()
        ns.stop()


def test_another_clients_method_call_reaches_the_open_panel_with_who_made_it(sim_lab):
    remote = sim_lab.connect("lab.laser")
    shown = panel(remote)
    other = Lab(sim_lab.address).connect("lab.laser")
    try:
        other.set_power(12.0)  # a method, not a setter: the daemon announces the call
        other.turn_on()  # changes `on` and the derived `emitted_power`
        wait_for(lambda: shown.properties["power"].last_value == 12.0, what="the method-made change")
        wait_for(lambda: shown.properties["emitted_power"].last_value == 12.0, what="the derived property")
        wait_for(lambda: shown.properties["on"].control.get() is True, what="on")
        wait_for(lambda: "turn_on()" in shown.last_change.value, what="the last change")
        assert f"(pid {os.getpid()}, unverified)" in shown.last_change.value  # who made it (self-declared)
    finally:
        shown.close()
        other.disconnect()
        remote.disconnect()


def test_a_moving_stage_shows_in_the_panel_and_stop_stops_it(sim_lab):
    remote = sim_lab.connect("lab.stage")
    shown = panel(remote)
    other = Lab(sim_lab.address).connect("lab.stage")
    try:
        assert shown.stop_method == "stop" and "stop" not in shown.methods
        other.velocity = 5.0
        other.move_to(90.0, wait=False)
        wait_for(lambda: shown.properties["moving"].last_value is True, what="moving")
        wait_for(lambda: 0 < shown.properties["position"].last_value, what="the position while moving")
        shown.stop_button.click()
        wait_for(lambda: shown.properties["moving"].last_value is False, what="stopped")
        stopped_at = other.position
        assert stopped_at < 80.0  # stopped on the way, not at the target
        wait_for(lambda: shown.properties["position"].last_value == stopped_at, what="the final position")
        assert "stopped at" in shown.header_note.value
    finally:
        shown.close()
        other.disconnect()
        remote.disconnect()


def test_a_change_between_the_first_read_and_the_subscription_reaches_the_panel(bench):
    service, lab = bench
    remote = lab.connect("test.bench")
    read = remote.read_properties

    def read_then_change(*names):
        values = read(*names)
        service._power = 33.0  # behind the panel's back, announced by nobody
        return values

    object.__setattr__(remote, "read_properties", read_then_change)  # only the build's read goes through it
    shown = panel(remote)
    object.__delattr__(remote, "read_properties")
    try:
        assert shown.properties["power"].control.get() in (1.0, 33.0)
        # the subscription hands the current values first; the keepalive read (5 s) is not what shows it
        wait_for(lambda: shown.properties["power"].last_value == 33.0, timeout=3, what="the value after the read")
    finally:
        shown.close()
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
                def labels(widget):  # every Label text under a widget (the limits column, argument hints)
                    own = [widget.value] if isinstance(widget, widgets.Label) else []
                    return own + [t for child in getattr(widget, "children", ()) for t in labels(child)]

                assert "mW [0 … 20]" in labels(shown.methods["set_power"].widget)
                assert "0 … 20" in labels(shown.properties["power"].widget)
                assert "1500 … 1630" in labels(shown.properties["wavelength"].widget)  # not narrowed
            finally:
                shown.close()
                remote.disconnect()
        finally:
            daemon.stop()
    finally:
        ns.stop()
