"""Which server model: Pyro5's thread server, Pyro5's multiplex server, or ours (GuardedServer), side by side.

Three servers in their own processes on 127.0.0.1, each serving the same three
members (set_power, power, sleep). For each: the median per-call latency, and
whether a second client is served while a first one's call sleeps (a hung
method), with how long that second call took. Ratios are against Pyro5's
thread server, raw Pyro5's default. Run: python benchmarks/bench_server_model.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import statistics
import sys
import threading
import time

from Pyro5.errors import CommunicationError
from Pyro5.errors import TimeoutError as PyroTimeout
from rawpyro import raw_proxy, raw_pyro

from pyrolab_jupyter import Lab, start_daemon, start_nameserver

SUPPORT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "support"
os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])



def _median_call(call, n: int) -> float:
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            call()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def _during_a_hung_call(hang, probe, seconds: float) -> float | None:
    """Seconds the probe took while another client's call sleeps; None when it was not served in time."""
    sleeper = threading.Thread(target=hang, args=(seconds,), daemon=True)
    sleeper.start()
    time.sleep(0.2)  # the sleeping call is under way
    start = time.perf_counter()
    try:
        probe()
        took: float | None = time.perf_counter() - start
    except (CommunicationError, PyroTimeout, TimeoutError):
        took = None
    sleeper.join(seconds + 5)
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--hang", type=float, default=2.0, help="seconds the first client's call sleeps")
    args = parser.parse_args(argv)
    probe_timeout = args.hang / 2  # a served probe answers at once; one stuck behind the sleeper runs out

    rows = []
    with contextlib.ExitStack() as raws:
        for kind in ("thread", "multiplex"):
            _, uri = raws.enter_context(raw_pyro(server=kind))
            caller = raw_proxy(uri)
            latency = _median_call(lambda: caller.set_power(3.0), args.calls)
            prober = raw_proxy(uri, probe_timeout)
            prober._pyroBind()
            served = _during_a_hung_call(lambda s, u=uri: raw_proxy(u, args.hang + 5).sleep(s),  # a proxy per thread
                                         lambda: prober.set_power(1.0), args.hang)
            rows.append((f"Pyro5 {kind} server", latency, served))
        ns = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
        daemon = start_daemon({"bench": "labservices:Dummy", "other": "labservices:Dummy"},
                              nameserver=ns.uri, spawn=True)
        try:
            lab = Lab(ns.uri)
            ours = lab.connect("bench")
            latency = _median_call(lambda: ours.set_power(3.0), args.calls)
            hanger = Lab(ns.uri, timeout=args.hang + 5).connect("bench")
            other = Lab(ns.uri, timeout=probe_timeout).connect("other")
            other.power  # connected before the sleep starts
            served = _during_a_hung_call(hanger.sleep, lambda: other.set_power(1.0), args.hang)
            rows.append(("pyrolab GuardedServer", latency, served))
        finally:
            daemon.stop()
            ns.stop()
    base = rows[0][1]
    print(f"{'server model':26s} {'call':>9s} {'ratio':>6s}  another client during a {args.hang:g} s hung call")
    for name, latency, served in rows:
        during = "NOT served" if served is None else f"served in {served * 1e3:.1f} ms"
        print(f"{name:26s} {latency * 1e6:7.0f}us {latency / base:6.2f}  {during}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
