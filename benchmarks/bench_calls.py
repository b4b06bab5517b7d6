"""Per-call latency and array throughput of pyrolab-jupyter next to raw Pyro5, in the same run.

Both servers run in their own processes on 127.0.0.1. Raw Pyro5 gets its best
case: a plain exposed object, a proxy made once, the marshal serializer, and
bytes instead of arrays (it cannot send numpy at all). Prints ratios
(pyrolab / raw; 1.00 means equal). Run: python benchmarks/bench_calls.py
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np
from Pyro5.api import Proxy

from pyrolab_jupyter import Lab, start_daemon, start_nameserver

# our side serves the test suite's Dummy (set_power, power, echo: the same members as Raw below)
SUPPORT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "support"
os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])

_RAW_SERVER = """
import sys
from Pyro5.api import Daemon, expose

@expose
class Raw:
    def __init__(self):
        self._power = 1.0
    def set_power(self, mw):
        self._power = mw
    @property
    def power(self):
        return self._power
    def echo(self, value):
        return value

daemon = Daemon(host="127.0.0.1", port=0)
print(daemon.register(Raw(), "raw"), flush=True)
import threading
threading.Thread(target=daemon.requestLoop, daemon=True).start()
sys.stdin.read()
daemon.shutdown()
"""


def _timed(raw, ours, n: int) -> tuple[float, float]:
    """Median seconds per call of each, over 7 batches of n calls, the two interleaved batch by batch."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(7):
        for fn, into in ((raw, samples[0]), (ours, samples[1])):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            into.append((time.perf_counter() - start) / n)
    return statistics.median(samples[0]), statistics.median(samples[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv)

    raw_proc = subprocess.Popen([sys.executable, "-c", _RAW_SERVER], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
    daemon = start_daemon({"bench": "labservices:Dummy"}, nameserver=ns.uri, spawn=True)
    try:
        raw = Proxy(raw_proc.stdout.readline().strip())
        raw._pyroSerializer = "marshal"
        raw._pyroTimeout = 10
        ours = Lab(ns.uri).connect("bench")
        rows = []
        rows.append(("method call set_power(3.0)",
                     *_timed(lambda: raw.set_power(3.0), lambda: ours.set_power(3.0), args.calls)))
        rows.append(("property read .power",
                     *_timed(lambda: raw._pyroInvoke("__getattr__", ("power",), {}), lambda: ours.power, args.calls)))
        for size in (1 << 10, 1 << 20, 16 << 20):
            arr = np.random.default_rng(0).random(size // 8)
            data = arr.tobytes()
            n = max(3, min(args.calls, (64 << 20) // size))
            rows.append((f"echo {size >> 10} KiB (raw: bytes, ours: ndarray)",
                         *_timed(lambda: raw.echo(data), lambda: ours.echo(arr), n)))
        print(f"{'operation':44s} {'raw Pyro5':>12s} {'pyrolab':>12s} {'ratio':>7s}")
        for name, t_raw, t_ours in rows:
            print(f"{name:44s} {t_raw * 1e6:10.0f}us {t_ours * 1e6:10.0f}us {t_ours / t_raw:7.2f}")
        big = 16 << 20
        t_big = rows[-1][2]
        print(f"16 MiB array round trip: {2 * big / t_big / 1e6:.0f} MB/s through pyrolab "
              f"({2 * big / rows[-1][1] / 1e6:.0f} MB/s raw bytes)")
    finally:
        daemon.stop()
        ns.stop()
        raw_proc.stdin.close()
        raw_proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
