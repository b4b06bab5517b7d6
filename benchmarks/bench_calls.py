"""Per-call latency and array throughput of pyrolab-jupyter next to raw Pyro5, in the same run.

Both servers run in their own processes on 127.0.0.1, pinned to one core and
this client to another where there are two or more; batches run in rotated
order, the figure is the median batch. Raw Pyro5 gets its best case: a plain
exposed object, a proxy made once, each of its serializers (marshal, serpent,
msgpack when installed), and bytes instead of arrays (it cannot send numpy at
all). Prints ratios (pyrolab / raw; 1.00 means equal). Run: python benchmarks/bench_calls.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from Pyro5.api import Proxy
from rawpyro import raw_pyro

from pyrolab_jupyter import Lab, start_daemon, start_nameserver

# our side serves the test suite's Dummy (set_power, power, echo: the same members as Raw below)
SUPPORT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "support"
os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])



def _timed(raw: Callable[[], object], ours: Callable[[], object], n: int) -> tuple[float, float]:
    """Median seconds per call of raw and ours, 7 batches of n calls in rotated order (other scripts use this)."""
    t = _rotated({"raw": raw, "ours": ours}, n)
    return t["raw"], t["ours"]


def _rotated(contenders: dict[str, Callable[[], object]], n: int, batches: int = 7) -> dict[str, float]:
    """Median seconds per call of each, over ``batches`` batches of n calls, run in rotated order."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for b in range(batches):
        for name in names[b % len(names):] + names[:b % len(names)]:
            fn = contenders[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(s) for name, s in samples.items()}


def _serializers() -> list[str]:
    """Raw Pyro5's serializers to compare with: marshal and serpent, msgpack when it is installed."""
    try:
        import msgpack  # noqa: F401
    except ImportError:
        return ["marshal", "serpent"]
    return ["marshal", "serpent", "msgpack"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--batches", type=int, default=7)
    args = parser.parse_args(argv)

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned = len(cores) >= 2
    if pinned:
        os.sched_setaffinity(0, {cores[-1]})  # the servers started below inherit this core
    raw_stack = contextlib.ExitStack()
    _, raw_uri = raw_stack.enter_context(raw_pyro())
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
    daemon = start_daemon({"bench": "labservices:Dummy"}, nameserver=ns.uri, spawn=True)
    try:
        raw_uri = raw_uri
        if pinned:
            os.sched_setaffinity(0, {cores[0]})
        raws = {}
        for name in _serializers():
            raw = Proxy(raw_uri)
            raw._pyroSerializer = name
            raw._pyroTimeout = 10
            raws[name] = raw
        ours = Lab(ns.uri).connect("bench")
        print(f"machine: {os.cpu_count()} cores; " + (f"servers pinned to core {cores[-1]}, client to core {cores[0]}"
                                                       if pinned else "not pinned (one core)"))
        ops: list[tuple[str, Callable[[Proxy], object], Callable[[], object], int]] = [
            ("method call set_power(3.0)", lambda r: r.set_power(3.0), lambda: ours.set_power(3.0), args.calls),
            ("property read .power", lambda r: r._pyroInvoke("__getattr__", ("power",), {}), lambda: ours.power,
             args.calls),
        ]
        rows = []
        for label, raw_op, our_op, n in ops:
            contenders: dict[str, Callable[[], object]] = {"ours": our_op}
            for name, raw in raws.items():
                contenders[name] = lambda r=raw, op=raw_op: op(r)
            rows.append((label, _rotated(contenders, n, args.batches)))
        header = f"{'operation':30s} {'pyrolab':>9s} {'calls/s':>8s}"
        for name in raws:
            header += f" {'raw Pyro5 ' + name:>18s} {'ratio':>6s}"
        print(header)
        for label, t in rows:
            line = f"{label:30s} {t['ours'] * 1e6:7.0f}us {1 / t['ours']:8.0f}"
            for name in raws:
                line += f" {t[name] * 1e6:16.0f}us {t['ours'] / t[name]:6.2f}"
            print(line)
        print("ratio: pyrolab time / raw Pyro5 time on that serializer (1.00 = as fast; below 1 = faster)")
        raw = raws["marshal"]
        for size in (1 << 10, 1 << 20, 16 << 20):
            arr = np.random.default_rng(0).random(size // 8)
            data = arr.tobytes()
            n = max(3, min(args.calls, (64 << 20) // size))
            t = _rotated({"raw": lambda: raw.echo(data), "ours": lambda: ours.echo(arr)}, n, args.batches)
            print(f"echo {size >> 10} KiB (raw marshal: bytes, ours: ndarray): raw {t['raw'] * 1e6:.0f}us, "
                  f"pyrolab {t['ours'] * 1e6:.0f}us, ratio {t['ours'] / t['raw']:.2f}")
        print(f"16 MiB array round trip: {2 * size / t['ours'] / 1e6:.0f} MB/s through pyrolab "
              f"({2 * size / t['raw'] / 1e6:.0f} MB/s raw bytes)")
    finally:
        daemon.stop()
        ns.stop()
        raw_stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
