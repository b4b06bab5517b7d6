"""How fast the lab notices: kill -9 of a daemon → offline, and nameserver restart → repopulated.

Real processes on 127.0.0.1. Prints the times next to the configured
check interval and heartbeat; raw Pyro5 has no health monitor, so its column
is what a plain nameserver shows: the dead entry stays "registered" forever.
Run: python benchmarks/bench_health.py
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

from Pyro5.api import locate_ns

from pyrolab_jupyter import Lab, start_daemon, start_nameserver

HERE = pathlib.Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "tests" / "support"), os.environ.get("PYTHONPATH", "")])


def _wait(condition, timeout: float = 30.0) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError("condition not met")
        time.sleep(0.005)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=args.interval)
    lab = Lab(ns.uri)
    detections = []
    try:
        for i in range(args.repeat):
            handle = start_daemon({f"victim.{i}": "labservices:Dummy"}, nameserver=ns.uri, spawn=True)
            time.sleep(args.interval * (0.3 + 0.7 * i / max(1, args.repeat - 1)))  # die at various phases
            handle.process.kill()
            detections.append(_wait(lambda: lab.entry(f"victim.{i}")["status"] == "offline"))
            handle.stop()
        with locate_ns(host="127.0.0.1", port=int(ns.address.rsplit(":", 1)[1])) as plain:
            still = sum(1 for name in plain.list() if name.startswith("victim."))
    finally:
        ns.stop()
    print(f"offline detection, check_interval={args.interval:g} s: median {statistics.median(detections):.2f} s, "
          f"max {max(detections):.2f} s (bound: 2 intervals = {2 * args.interval:g} s); "
          f"raw Pyro5 nameserver: never (entries kept as registered: {still}/{args.repeat})")

    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=args.interval)
    address = ns.address
    host, port = address.rsplit(":", 1)
    handle = start_daemon({"persist.a": "labservices:Dummy"}, nameserver=ns.uri, spawn=True, heartbeat=args.interval)
    try:
        ns.stop()
        ns = start_nameserver(host=host, port=int(port), check_interval=args.interval)
        took = _wait(lambda: "persist.a" in Lab(address).names())
        print(f"nameserver restart → repopulated in {took:.2f} s (heartbeat {args.interval:g} s)")
    finally:
        handle.stop()
        ns.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
