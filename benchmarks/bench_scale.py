"""A lab at scale: listing 1,000 services on 100 daemons, and noticing when 100 of them go offline at once.

Daemons run on 127.0.0.1 in child processes (``--per-process`` daemons each,
so 100 daemons do not need 100 Python processes); the nameserver runs here.
Listing is timed through ``Lab.services()`` (status, lock holder, description
of every entry) next to a raw Pyro5 ``list(return_metadata=True)`` on the same
nameserver. Then one child is killed (-9) and the time until every one of its
services shows offline is taken, against the configured check interval.
Run: python benchmarks/bench_scale.py
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

from Pyro5.api import Proxy
from rawpyro import end_child

from pyrolab_jupyter import Lab, start_nameserver

HERE = pathlib.Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "tests" / "support"), os.environ.get("PYTHONPATH", "")])

_HOST = """
import sys
from pyrolab_jupyter import start_daemon
ns, first, count, services = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
handles = [start_daemon({f"scale.d{d:03d}.s{s:02d}": "labservices:Dummy" for s in range(services)},
                        nameserver=ns, heartbeat=2.0, register_timeout=60) for d in range(first, first + count)]
print("up", flush=True)
sys.stdin.read()
for h in handles:
    h.stop()
"""


def _wait(condition, timeout: float = 120.0) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError("condition not met")
        time.sleep(0.01)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemons", type=int, default=100)
    parser.add_argument("--services", type=int, default=10, help="services per daemon")
    parser.add_argument("--per-process", type=int, default=10, help="daemons per child process")
    parser.add_argument("--interval", type=float, default=1.0, help="the nameserver's check interval")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    total = args.daemons * args.services
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=args.interval)
    children: list[subprocess.Popen[str]] = []
    try:
        started = time.monotonic()
        for first in range(0, args.daemons, args.per_process):
            count = min(args.per_process, args.daemons - first)
            children.append(subprocess.Popen(
                [sys.executable, "-c", _HOST, ns.uri, str(first), str(count), str(args.services)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "up":
                raise RuntimeError("a daemon host did not start")
        lab = Lab(ns.uri, timeout=60)
        _wait(lambda: sum(1 for row in lab.services() if row["status"] == "online") == total)
        print(f"{total} services on {args.daemons} daemons ({len(children)} processes) up and online "
              f"in {time.monotonic() - started:.1f} s")
        ours, raw = [], []
        plain = Proxy(ns.uri)
        plain._pyroSerializer = "marshal"
        plain._pyroTimeout = 60
        with plain:
            for i in range(args.repeat):
                for fn, into in ((lambda: lab.services(), ours), (lambda: plain.list(return_metadata=True), raw))[
                        ::(-1) ** i]:
                    t = time.perf_counter()
                    rows = fn()
                    into.append(time.perf_counter() - t)
                    assert len(rows) >= total
        print(f"nameserver listing, {total} services: Lab.services() median {statistics.median(ours) * 1e3:.1f} ms; "
              f"raw Pyro5 list(return_metadata=True) {statistics.median(raw) * 1e3:.1f} ms; "
              f"ratio {statistics.median(ours) / statistics.median(raw):.2f}")
        victim = children[0]
        names = {f"scale.d{d:03d}.s{s:02d}" for d in range(min(args.per_process, args.daemons))
                 for s in range(args.services)}
        victim.kill()
        took = _wait(lambda: all(row["status"] == "offline" for row in lab.services() if row["name"] in names))
        print(f"offline detection at scale: {len(names)} services of {total} killed (-9) at once → all offline "
              f"in {took:.2f} s (check_interval {args.interval:g} s; bound 2 intervals)")
    finally:
        for child in children:
            if child.poll() is None:
                assert child.stdin is not None
                child.stdin.close()
        for child in children:  # told all at once above: they stop together
            end_child(child, grace=30)
        ns.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
