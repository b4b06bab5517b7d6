"""What mutual TLS costs: per connection (handshake) and per call, TLS lab next to a plain lab, same run.

A plain lab and a TLS lab (certificates from a throw-away CA made with
``pyrolab certs``) run side by side, each daemon in its own process; raw Pyro5
(plain, a proxy made once) is the floor. Prints medians and the TLS/plain
ratios, then the bulk path's throughput (``core.bulk``: a 10 MB array as an
argument, and both ways) over a TLS and a plain bulk connection, batches
interleaved; with 2 cores or more the daemons are pinned to one and this
client to another. Run: python benchmarks/bench_tls.py
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
from bench_bulk import pin
from Pyro5.api import Proxy

from pyrolab_jupyter import Lab, Security, start_daemon, start_nameserver
from pyrolab_jupyter.cli import main as pyrolab
from pyrolab_jupyter.core.proxies import new_proxy

SUPPORT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "support"
os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])


def _median(fn: Callable[[], object], n: int, batches: int = 5) -> float:
    samples = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def _interleaved(fns: list[Callable[[], object]], n: int, batches: int) -> list[float]:
    """Median seconds per call of each function, batches interleaved in rotated order (load hits all alike)."""
    samples: list[list[float]] = [[] for _ in fns]
    for batch in range(batches):
        for k in range(len(fns)):
            i = (k + batch) % len(fns)
            start = time.perf_counter()
            for _ in range(n):
                fns[i]()
            samples[i].append((time.perf_counter() - start) / n)
    return [statistics.median(s) for s in samples]


def _certs(folder: pathlib.Path) -> dict[str, Security]:
    quiet = open(os.devnull, "w")
    stdout, sys.stdout = sys.stdout, quiet
    try:
        pyrolab(["certs", "init", str(folder)])
        for name, role in (("ns", "daemon"), ("bench", "daemon"), ("me", "user")):
            pyrolab(["certs", "new", name, "--role", role, "--dir", str(folder)])
    finally:
        sys.stdout = stdout
        quiet.close()
    return {name: Security(folder / f"{name}.pem", folder / f"{name}.key", folder / "lab-ca.pem")
            for name in ("ns", "bench", "me")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="calls per batch (default 300)")
    parser.add_argument("--connects", type=int, default=30, help="connections per batch (default 30)")
    parser.add_argument("--bulk-mb", type=float, default=10.0,
                        help="array size for the bulk rows, MB (default 10)")
    parser.add_argument("--transfers", type=int, default=5, help="bulk transfers per batch (default 5)")
    parser.add_argument("--batches", type=int, default=5, help="bulk batches (default 5)")
    args = parser.parse_args(argv)
    cores = pin()
    if cores:
        os.sched_setaffinity(0, cores[0])  # the daemons inherit this
    with tempfile.TemporaryDirectory() as tmp:
        sec = _certs(pathlib.Path(tmp))
        plain_ns = start_nameserver(port=0, check_interval=5.0)
        tls_ns = start_nameserver(port=0, check_interval=5.0, security=sec["ns"])
        plain_d = start_daemon({"b.plain": "labservices:Dummy"}, nameserver=plain_ns.address, spawn=True)
        tls_d = start_daemon({"b.tls": "labservices:Dummy"}, nameserver=tls_ns.address, spawn=True,
                             security=sec["bench"])
        if cores:
            os.sched_setaffinity(0, cores[1])
        try:
            plain = Lab(plain_ns.address, timeout=60).connect("b.plain")
            tls = Lab(tls_ns.address, timeout=60, security=sec["me"]).connect("b.tls")
            raw = Proxy(plain_d.uris["b.plain"])  # raw Pyro5 floor: serpent, no pool, no validation
            raw._pyroBind()

            def connect(uri: str, security: Security | None) -> Callable[[], None]:
                def once() -> None:
                    with new_proxy(uri, 10.0, security) as proxy:
                        proxy._pyroBind()
                return once

            rows = [
                ("connect + handshake", _median(lambda: Proxy(plain_d.uris["b.plain"])._pyroBind(), args.connects),
                 _median(connect(plain_d.uris["b.plain"], None), args.connects),
                 _median(connect(tls_d.uris["b.tls"], sec["me"]), args.connects)),
                ("method call set_power", _median(lambda: raw.set_power(2.0), args.calls),
                 _median(lambda: plain.set_power(2.0), args.calls),
                 _median(lambda: tls.set_power(2.0), args.calls)),
                ("property read power", _median(lambda: raw.power, args.calls),
                 _median(lambda: plain.power, args.calls), _median(lambda: tls.power, args.calls)),
            ]
            raw._pyroRelease()
            arr = np.random.default_rng(0).random(max(1, int(args.bulk_mb * 1e6) // 8))
            bulk_rows = []
            for label, ways, call in (("argument", 1, "dtype_of"), ("argument + result", 2, "echo")):
                contenders = [lambda c=call: getattr(plain, c)(arr), lambda c=call: getattr(tls, c)(arr)]
                plain_s, tls_s = _interleaved(contenders, args.transfers, args.batches)
                bulk_rows.append((f"{_mb(arr.nbytes)} array, {label}", arr.nbytes * ways, plain_s, tls_s))
        finally:
            tls_d.stop()
            plain_d.stop()
            tls_ns.stop()
            plain_ns.stop()
    print(f"{'':24} {'raw Pyro5':>10} {'plain':>10} {'TLS':>10} {'ratio TLS/plain':>16}")
    for label, raw_s, plain_s, tls_s in rows:
        print(f"{label:24} {raw_s * 1e6:8.0f}us {plain_s * 1e6:8.0f}us {tls_s * 1e6:8.0f}us "
              f"{tls_s / plain_s:16.2f}")
    where = (f"pinned: daemons on core {sorted(cores[0])}, client on core {sorted(cores[1])}" if cores
             else "not pinned (one core)")
    print(f"\nbulk path (core.bulk), MB/s moved, {where}")
    print(f"{'':32} {'plain':>10} {'TLS':>10} {'ratio TLS/plain MB/s':>21}")
    for label, moved, plain_s, tls_s in bulk_rows:
        print(f"{label:32} {moved / plain_s / 1e6:10.0f} {moved / tls_s / 1e6:10.0f} {plain_s / tls_s:21.2f}")
    return 0


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:g} MB" if nbytes >= 1e6 else f"{nbytes / 1e3:g} KB"


if __name__ == "__main__":
    sys.exit(main())
