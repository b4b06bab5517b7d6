"""How soon a subscriber sees another client's change, next to a raw Pyro5 round trip, in the same run.

A sim Laser runs in its own daemon process; one client calls ``set_power`` (a
method: the daemon announces it, the subscriber re-reads ``power`` and
``emitted_power`` in one round trip) while another subscribes. Then the same
with ten silent subscribers (they accept TCP and never answer) beside the live
one. Raw Pyro5's figure is one call round trip to a plain object, the floor
any push-then-read scheme sits on. Prints medians, worst cases and ratios.
Run: python benchmarks/bench_truth.py
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import threading
import time
import uuid
from typing import Any

from Pyro5.api import Proxy
from rawpyro import raw_pyro

from pyrolab_jupyter import Lab, start_daemon, start_nameserver


class _Latest:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.changed = threading.Condition()

    def __call__(self, prop: str, value: Any, _t: float) -> None:
        with self.changed:
            self.values[prop] = value
            self.changed.notify_all()

    def wait_for(self, prop: str, value: Any, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.values.get(prop) == value, timeout)


def _visibility(writer: Any, seen: _Latest, n: int, start: float) -> list[float]:
    lags = []
    for i in range(n):
        value = start + i
        began = time.perf_counter()
        writer.set_power(value)
        if not seen.wait_for("emitted_power", value, 30.0):
            raise SystemExit(f"the subscriber never saw power {value}")
        lags.append(time.perf_counter() - began)
    return lags


def _silent_listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)  # the kernel completes the TCP handshakes; nobody ever reads or answers
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=30)
    args = parser.parse_args(argv)

    raw_stack = contextlib.ExitStack()
    _, raw_uri = raw_stack.enter_context(raw_pyro())
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
    daemon = start_daemon({"laser": "pyrolab_jupyter.instruments.sim:Laser"}, nameserver=ns.uri, spawn=True)
    silent = _silent_listener()
    try:
        raw = Proxy(raw_uri)
        raw._pyroSerializer = "marshal"
        raw._pyroTimeout = 10
        raw.ping()
        samples = []
        for _ in range(200):
            began = time.perf_counter()
            raw.ping()
            samples.append(time.perf_counter() - began)
        raw_rtt = statistics.median(samples)

        laser = Lab(ns.uri).connect("laser")
        writer = Lab(ns.uri).connect("laser")
        writer.turn_on()
        seen = _Latest()
        subscription = laser.subscribe(seen)
        seen.wait_for("on", True, 30.0)
        alone = _visibility(writer, seen, args.changes, 1.0)

        port = silent.getsockname()[1]
        for _ in range(10):
            laser._pyrolab_call("control", "pyrolab_subscribe", (f"PYRO:pyrolab.inbox@127.0.0.1:{port}",
                                                                 uuid.uuid4().hex), {})
        crowded = _visibility(writer, seen, args.changes, 20.0)
        subscription.close()

        print(f"{'':46}{'median':>10}{'worst':>10}{'ratio':>8}")
        print(f"{'raw Pyro5 call round trip':46}{raw_rtt * 1e3:>8.2f}ms{'':>10}{1.0:>8.2f}")
        for label, lags in (("set_power() -> subscriber sees it", alone),
                            ("... with 10 silent subscribers too", crowded)):
            median = statistics.median(lags)
            print(f"{label:46}{median * 1e3:>8.2f}ms{max(lags) * 1e3:>8.1f}ms{median / raw_rtt:>8.2f}")
        print("(the call's own round trip is included; target: another client's change visible within 500 ms)")
    finally:
        silent.close()
        daemon.stop()
        ns.stop()
        raw_stack.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
