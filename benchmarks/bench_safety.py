"""What the daemon's safety rules cost per call, next to raw Pyro5 and to an unguarded call, in the same run.

Four ``set_power`` calls, each server in its own process on 127.0.0.1: raw
Pyro5 (a plain object), pyrolab without rules, pyrolab with a soft limit
(checked on the daemon before the call), and pyrolab with an interlock (the
daemon reads a shutter's ``closed`` through the nameserver before each call).
Prints ratios to raw Pyro5. Run: python benchmarks/bench_safety.py
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from bench_calls import _timed  # the same timing as bench_calls
from Pyro5.api import Proxy
from rawpyro import raw_pyro

from pyrolab_jupyter import Lab, start_daemon, start_nameserver

_LASER = "pyrolab_jupyter.instruments.sim:Laser"
_INTERLOCK = {"call": "set_power", "require": {"service": "bench.shutter", "property": "closed", "equals": True}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)

    raw_stack = contextlib.ExitStack()
    _, raw_uri = raw_stack.enter_context(raw_pyro())
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
    daemon = start_daemon({
        "bench.plain": _LASER,
        "bench.limited": {"class": _LASER, "limits": {"set_power.mw": [0, 20]}},
        "bench.shutter": "pyrolab_jupyter.instruments.shutter:Shutter",
        "bench.interlocked": {"class": _LASER, "interlocks": [_INTERLOCK]},
    }, nameserver=ns.uri, spawn=True)
    try:
        raw = Proxy(raw_uri)
        raw._pyroSerializer = "marshal"
        raw._pyroTimeout = 10
        lab = Lab(ns.uri)
        print(f"{'set_power(3.0) on':44s} {'raw Pyro5':>12s} {'pyrolab':>12s} {'ratio':>7s}")
        for name, label in (("bench.plain", "no rules"), ("bench.limited", "a soft limit"),
                            ("bench.interlocked", "an interlock (remote read per call)")):
            ours = lab.connect(name)
            t_raw, t_ours = _timed(lambda: raw.set_power(3.0), lambda: ours.set_power(3.0), args.calls)  # noqa: B023
            print(f"{label:44s} {t_raw * 1e6:10.0f}us {t_ours * 1e6:10.0f}us {t_ours / t_raw:7.2f}")
    finally:
        daemon.stop()
        ns.stop()
        raw_stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
