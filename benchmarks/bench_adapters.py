"""What serving a foreign driver through an adapter costs, next to raw Pyro5 serving the same object.

The same plain class (tests/support/adapted.py's PlainSupply) is served by raw
Pyro5 (class exposed with Pyro5's own ``expose``, marshal serializer, a proxy
made once) and by pyrolab-jupyter through the plain-object adapter, each in
its own process on 127.0.0.1; a native ``Service`` with the same kind of
method is timed too. Also prints how long ``adapt()`` takes to build the
service for a QCoDeS instrument with channels (once per served instrument).
Prints ratios (pyrolab / raw; 1.00 means equal). Run: python benchmarks/bench_adapters.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import statistics
import sys
import time

from Pyro5.api import Proxy
from rawpyro import raw_pyro

from pyrolab_jupyter import Lab, start_daemon, start_nameserver

SUPPORT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "support"
os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])
sys.path.insert(0, str(SUPPORT))



def _timed(fns: list, n: int) -> list[float]:
    """Median seconds per call of each function, over 7 batches of n calls, interleaved batch by batch."""
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(7):
        for fn, into in zip(fns, samples):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            into.append((time.perf_counter() - start) / n)
    return [statistics.median(s) for s in samples]


def _adapt_time(repeat: int) -> tuple[float, int] | None:
    try:
        from qcodes.instrument_drivers.mock_instruments import DummyChannelInstrument
    except ImportError:
        return None
    from pyrolab_jupyter.adapters import adapt

    times, members = [], 0
    for i in range(repeat):
        instrument = DummyChannelInstrument(f"bench_channels_{i}")
        try:
            start = time.perf_counter()
            service = adapt(instrument)
            times.append(time.perf_counter() - start)
            described = service.describe()
            members = len(described["methods"]) + len(described["properties"])
        finally:
            instrument.close()
    return statistics.median(times), members


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="adapt() builds to time")
    args = parser.parse_args(argv)

    raw_stack = contextlib.ExitStack()
    _, raw_uri = raw_stack.enter_context(raw_pyro(served="adapted:PlainSupply"))
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
    daemon = start_daemon({"bench.adapted": "adapted:PlainSupply", "bench.native": "labservices:Dummy"},
                          nameserver=ns.uri, spawn=True)
    try:
        raw = Proxy(raw_uri)
        raw._pyroSerializer = "marshal"
        raw._pyroTimeout = 10
        lab = Lab(ns.uri)
        adapted, native = lab.connect("bench.adapted"), lab.connect("bench.native")
        rows = [
            ("method call set_voltage(3.0)",
             *_timed([lambda: raw.set_voltage(3.0), lambda: adapted.set_voltage(3.0),
                      lambda: native.set_power(3.0)], args.calls)),
            ("property read .voltage",
             *_timed([lambda: raw._pyroInvoke("__getattr__", ("voltage",), {}), lambda: adapted.voltage,
                      lambda: native.power], args.calls)),
        ]
        print(f"{'operation':32s} {'raw Pyro5':>11s} {'adapted':>11s} {'native':>11s} "
              f"{'ratio adapted':>14s} {'ratio native':>13s}")
        for name, t_raw, t_adapted, t_native in rows:
            print(f"{name:32s} {t_raw * 1e6:9.0f}us {t_adapted * 1e6:9.0f}us {t_native * 1e6:9.0f}us "
                  f"{t_adapted / t_raw:14.2f} {t_native / t_raw:13.2f}")
        built = _adapt_time(args.repeat)
        if built is None:
            print("adapt() of a QCoDeS instrument: qcodes is not installed (pip install 'pyrolab-jupyter[qcodes]')")
        else:
            print(f"adapt() of QCoDeS DummyChannelInstrument ({built[1]} members): {built[0] * 1e3:.0f} ms")
    finally:
        daemon.stop()
        ns.stop()
        raw_stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
