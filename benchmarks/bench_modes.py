"""Cost of instance modes and of a second nameserver, next to raw Pyro5 in the same run.

A raw Pyro5 object (its best case: proxy made once, marshal) against the same
``bump()`` served as ``single``, ``session`` and ``percall`` by one daemon in its
own process; then ``Lab(a).services()`` against ``Lab([a, b]).services()``.
Prints ratios (1.00 means equal). Run: python benchmarks/bench_modes.py
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

from Pyro5.api import Proxy
from rawpyro import raw_pyro

from pyrolab_jupyter import Lab, start_daemon, start_nameserver

SUPPORT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "support"
os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])



def _median(fn: Callable[[], object], n: int) -> float:
    """Median seconds per call over 5 batches of n calls."""
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)

    raw_stack = contextlib.ExitStack()
    _, raw_uri = raw_stack.enter_context(raw_pyro())
    first = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
    second = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
    services = {f"bench.{mode}": {"class": "modeservices:Counter", "instance_mode": mode}
                for mode in ("single", "session", "percall")}
    daemon = start_daemon(services, nameserver=[first.address, second.address], spawn=True)
    try:
        raw = Proxy(raw_uri)
        raw._pyroSerializer = "marshal"
        raw._pyroTimeout = 10
        t_raw = _median(raw.bump, args.calls)
        print(f"{'operation':40s} {'raw Pyro5':>12s} {'pyrolab':>12s} {'ratio':>7s}")
        lab = Lab(first.address)
        for mode in ("single", "session", "percall"):
            remote = lab.connect(f"bench.{mode}")
            t_ours = _median(remote.bump, args.calls)
            print(f"{'bump() in ' + mode + ' mode':40s} {t_raw * 1e6:10.0f}us {t_ours * 1e6:10.0f}us "
                  f"{t_ours / t_raw:7.2f}")
            remote.disconnect()
        both = Lab([first.address, second.address])
        t_one = _median(lab.services, max(3, args.calls // 10))
        t_two = _median(both.services, max(3, args.calls // 10))
        print(f"{'services(): two nameservers / one':40s} {t_one * 1e6:10.0f}us {t_two * 1e6:10.0f}us "
              f"{t_two / t_one:7.2f}")
    finally:
        daemon.stop()
        first.stop()
        second.stop()
        raw_stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
