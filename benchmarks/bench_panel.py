"""Panel figures: build time for a 40-member service, live updates per second, bqplot vs ipympl.

Run: ``python benchmarks/bench_panel.py`` (a plain Python process; no frontend).
Everything runs on 127.0.0.1 in this process: a nameserver, a daemon, a client.
Targets (issue 5): build < 150 ms for 40 members; >= 50 live updates/s
without blocking the kernel's (here: the main) thread.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import warnings
from typing import Annotated, Any, Literal

import ipywidgets as widgets
import numpy as np

from pyrolab_jupyter.core.client import Lab
from pyrolab_jupyter.core.service import Range, Service, Unit, expose
from pyrolab_jupyter.hosting import start_daemon, start_nameserver
from pyrolab_jupyter.jupyter.panels import panel

warnings.filterwarnings("ignore", category=DeprecationWarning)

_KINDS: list[Any] = [
    Annotated[float, Range(0, 100), Unit("mW")],
    Annotated[int, Range(0, None)],
    float,
    bool,
    Literal["a", "b", "c"],
    str,
    list[int],
]


def _service_class(n_props: int = 20, n_methods: int = 20) -> type[Service]:
    """A service with ``n_props`` writable properties and ``n_methods`` methods of mixed kinds."""
    namespace: dict[str, Any] = {"__doc__": "Forty members.", "thread_safe": True}
    defaults = {float: 1.0, int: 1, bool: False, str: "x", list: [1]}
    for i in range(n_props):
        kind = _KINDS[i % len(_KINDS)]
        base = getattr(kind, "__origin__", kind)
        start = defaults.get(base, "a")

        def getter(self: Any, _i: int = i, _start: Any = start) -> Any:
            return self.__dict__.get(f"p{_i}", _start)

        def setter(self: Any, value: Any, _i: int = i) -> None:
            self.__dict__[f"p{_i}"] = value

        getter.__annotations__ = {"return": kind}
        getter.__doc__ = f"Property {i}."
        setter.__annotations__ = {"value": kind, "return": None}
        namespace[f"prop{i}"] = expose(property(getter, setter))
    for i in range(n_methods):
        kind = _KINDS[i % len(_KINDS)]

        def method(self: Any, value: Any, count: Annotated[int, Range(1, 10)] = 1) -> Any:
            return value

        method.__annotations__ = {"value": kind, "count": Annotated[int, Range(1, 10)], "return": kind}
        method.__doc__ = f"Method {i}."
        method.__name__ = f"do{i}"
        namespace[f"do{i}"] = expose(method)

    def bump(self: Any, n: int) -> None:
        for k in range(n):
            self.notify("prop2", float(k))

    namespace["bump"] = bump
    return type("Forty", (Service,), namespace)


def _hand_made(n: int = 40) -> widgets.VBox:
    """The baseline: an equivalent VBox built by hand (label, slider, box, unit per row)."""
    rows = []
    for i in range(n):
        slider = widgets.FloatSlider(min=0, max=100, continuous_update=False, readout=False)
        box = widgets.BoundedFloatText(min=0, max=100)
        widgets.link((slider, "value"), (box, "value"))
        rows.append(widgets.HBox([widgets.Label(f"member{i}"), slider, box, widgets.Label("mW")]))
    return widgets.VBox(rows)


def _timed(make: Any, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        built = make()
        times.append((time.perf_counter() - start) * 1e3)
        built.close()
    return times


def bench_build(remote: Any, repeat: int = 15) -> None:
    panel(remote).close()  # warm-up: imports, proxies, the callback receiver
    ours = _timed(lambda: panel(remote), repeat)
    hand = _timed(_hand_made, repeat)
    lab, name = remote._pyrolab_lab, remote._pyrolab_name
    connected = _timed(lambda: panel(lab.connect(name)), repeat)
    members = len(remote.describe()["methods"]) + len(remote.describe()["properties"])
    print(f"panel build, {members} members (read + subscribe + widgets; the description is the connect's): "
          f"median {statistics.median(ours):.1f} ms, max {max(ours):.1f} ms  (target < 150 ms)")
    print(f"  connect + panel (one describe round trip in all): median {statistics.median(connected):.1f} ms")
    print(f"  baseline, hand-made VBox of 40 slider rows: median {statistics.median(hand):.1f} ms")


def bench_updates(service: Any, remote: Any, seconds: float = 2.0) -> None:
    shown = panel(remote)
    row = shown.properties["prop2"]
    stop = threading.Event()
    ticks: list[float] = []

    def announce() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            service.notify("prop2", float(k))
            time.sleep(0.001)

    producer = threading.Thread(target=announce, daemon=True)
    before = shown.updates
    start = time.perf_counter()
    producer.start()
    last = time.perf_counter()
    while time.perf_counter() - start < seconds:  # the "kernel": a main-thread loop that must keep ticking
        time.sleep(0.005)
        now = time.perf_counter()
        ticks.append(now - last)
        last = now
    stop.set()
    producer.join()
    elapsed = time.perf_counter() - start
    rate = (shown.updates - before) / elapsed
    print(f"live updates applied to the panel: {rate:.0f}/s over {elapsed:.1f} s "
          f"(announcements every ~1 ms, coalesced by the daemon; target >= 50/s)")
    print(f"  main thread meanwhile: 5 ms ticks, worst gap {max(ticks) * 1e3:.1f} ms, "
          f"median {statistics.median(ticks) * 1e3:.1f} ms")

    # end to end: another client's setter until the open panel shows it
    other_lab = Lab(remote._pyrolab_lab.address)
    other = other_lab.connect(remote._pyrolab_name)
    latencies = []
    for k in range(30):
        value = 1000.0 + k
        t0 = time.perf_counter()
        other.prop2 = value
        while row.control.get() != value and time.perf_counter() - t0 < 2:
            time.sleep(0.0005)
        latencies.append((time.perf_counter() - t0) * 1e3)
    print(f"  another client's set → open panel shows it: median {statistics.median(latencies):.1f} ms, "
          f"max {max(latencies):.1f} ms")
    other.disconnect()
    shown.close()


def bench_plots(repeat: int = 10) -> None:
    y, z = np.random.rand(1000), np.random.rand(256, 256)
    t0 = time.perf_counter()
    import bqplot  # noqa: F401

    bq_import = (time.perf_counter() - t0) * 1e3
    from pyrolab_jupyter.jupyter.plots import plot_array

    def bq(a: np.ndarray) -> float:
        plot_array(a).close()
        start = time.perf_counter()
        for _ in range(repeat):
            plot_array(a).close()
        return (time.perf_counter() - start) / repeat * 1e3

    print(f"bqplot: import {bq_import:.0f} ms; figure with 1000-point line {bq(y):.1f} ms, "
          f"256x256 image {bq(z):.1f} ms")
    try:
        t0 = time.perf_counter()
        import matplotlib

        matplotlib.use("module://ipympl.backend_nbagg")
        import matplotlib.pyplot as plt
    except (ImportError, ValueError) as err:  # no matplotlib, or matplotlib (e.g. from qcodes) without ipympl
        print(f"ipympl: not measured ({err})")
        return
    mpl_import = (time.perf_counter() - t0) * 1e3

    def mpl(a: np.ndarray) -> float:
        start = time.perf_counter()
        for _ in range(repeat):
            with plt.ioff():
                fig = plt.figure(figsize=(4, 3))
                ax = fig.add_subplot()
                ax.plot(a) if a.ndim == 1 else ax.imshow(a)
            fig.canvas.draw()
            plt.close(fig)
        return (time.perf_counter() - start) / repeat * 1e3

    print(f"ipympl: import {mpl_import:.0f} ms; figure with 1000-point line {mpl(y):.1f} ms, "
          f"256x256 image {mpl(z):.1f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Panel build time, live updates per second, plot widgets.")
    parser.add_argument("--repeat", type=int, default=15, help="panel builds to time")
    parser.add_argument("--seconds", type=float, default=2.0, help="how long to stream live updates")
    args = parser.parse_args(argv)
    service = _service_class()()
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=5.0)
    try:
        daemon = start_daemon({"bench.forty": service}, nameserver=ns.uri)
        try:
            remote = Lab(ns.uri).connect("bench.forty")
            bench_build(remote, args.repeat)
            bench_updates(service, remote, args.seconds)
            remote.disconnect()
        finally:
            daemon.stop()
    finally:
        ns.stop()
    bench_plots()


if __name__ == "__main__":
    main()
