"""Which server model: Pyro5's thread server, Pyro5's multiplex server, or ours (GuardedServer), side by side.

Three servers in their own processes on 127.0.0.1, each serving the same three
members (set_power, power, sleep). For each: the median per-call latency, and
whether a second client is served while a first one's call sleeps (a hung
method), with how long that second call took. Ratios are against Pyro5's
thread server, raw Pyro5's default. Run: python benchmarks/bench_server_model.py
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import threading
import time

from Pyro5.api import Proxy
from Pyro5.errors import CommunicationError
from Pyro5.errors import TimeoutError as PyroTimeout

from pyrolab_jupyter import Lab, start_daemon, start_nameserver

SUPPORT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "support"
os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])

_RAW_SERVER = """
import sys, threading, time
from Pyro5 import config
from Pyro5.api import Daemon, expose
config.SERVERTYPE = sys.argv[1]   # this process is ours: the process-wide setting is fine here

@expose
class Raw:
    def __init__(self):
        self._power = 1.0
    def set_power(self, mw):
        self._power = mw
    @property
    def power(self):
        return self._power
    def sleep(self, seconds):
        time.sleep(seconds)
        return seconds

daemon = Daemon(host="127.0.0.1", port=0)
print(daemon.register(Raw(), "raw"), flush=True)
threading.Thread(target=daemon.requestLoop, daemon=True).start()
sys.stdin.read()
"""


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


def _raw(kind: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", _RAW_SERVER, kind], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _proxy(uri: str, timeout: float) -> Proxy:
    proxy = Proxy(uri)
    proxy._pyroSerializer = "marshal"
    proxy._pyroTimeout = timeout
    return proxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--hang", type=float, default=2.0, help="seconds the first client's call sleeps")
    args = parser.parse_args(argv)
    probe_timeout = args.hang / 2  # a served probe answers at once; one stuck behind the sleeper runs out

    rows = []
    procs = []
    try:
        for kind in ("thread", "multiplex"):
            proc, uri = _raw(kind)
            procs.append(proc)
            caller = _proxy(uri, 10)
            latency = _median_call(lambda: caller.set_power(3.0), args.calls)
            prober = _proxy(uri, probe_timeout)
            prober._pyroBind()
            served = _during_a_hung_call(lambda s, u=uri: _proxy(u, args.hang + 5).sleep(s),  # a proxy per thread
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
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)
    base = rows[0][1]
    print(f"{'server model':26s} {'call':>9s} {'ratio':>6s}  another client during a {args.hang:g} s hung call")
    for name, latency, served in rows:
        during = "NOT served" if served is None else f"served in {served * 1e3:.1f} ms"
        print(f"{name:26s} {latency * 1e6:7.0f}us {latency / base:6.2f}  {during}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
