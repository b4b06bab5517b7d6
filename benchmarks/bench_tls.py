"""What mutual TLS costs: per connection (handshake) and per call, TLS lab next to a plain lab, same run.

A plain lab and a TLS lab (certificates from a throw-away CA made with
``pyrolab certs``) run side by side, each daemon in its own process; raw Pyro5
(plain, a proxy made once) is the floor. Prints medians and the TLS/plain
ratios, then the bulk path's throughput (``core.bulk``: 10 MB and 100 MB
arrays as a result, as an argument, and both ways) over a plain and a TLS
bulk connection, next to their ceilings in the same run: a raw socket and a
raw TLS socket (the stdlib ``ssl`` module with the same ``Security``
contexts, big ``sendall``, ``recv_into`` a fresh array), each server in a
process of its own, batches interleaved in rotated order; with 2 cores or
more the servers are pinned to one and this client to another.
Run: python benchmarks/bench_tls.py
"""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from bench_bulk import _RAW_SOCKET, RawSocket, pin, start
from Pyro5.api import Proxy
from rawpyro import end_child

from pyrolab_jupyter import Lab, Security, start_daemon, start_nameserver
from pyrolab_jupyter.cli import main as pyrolab
from pyrolab_jupyter.core.proxies import new_proxy

HERE = pathlib.Path(__file__).resolve().parent
SUPPORT = HERE.parent / "tests" / "support"
os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), str(HERE), os.environ.get("PYTHONPATH", "")])

# bench_bulk's raw socket server, each connection wrapped in the daemon's own TLS server context
_RAW_TLS = "from pyrolab_jupyter import Security\n_tls = Security(*FILES).server_context()\n" + \
    _RAW_SOCKET.replace("def serve(conn):\n", "def serve(conn):\n    conn = _tls.wrap_socket(conn, server_side=True)\n")


def _median(fn: Callable[[], object], n: int, batches: int = 5) -> float:
    samples = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def _interleaved(fns: list[Callable[[], object]], n: int, batches: int,
                 cpu: list[float] | None = None) -> list[float]:
    """Median seconds per call of each function, batches interleaved in rotated order (load hits all alike);
    with ``cpu``, also the median CPU seconds per call this process spent (appended, in the same order)."""
    samples: list[list[float]] = [[] for _ in fns]
    cpu_samples: list[list[float]] = [[] for _ in fns]
    for batch in range(batches):
        for k in range(len(fns)):
            i = (k + batch) % len(fns)
            start, used = time.perf_counter(), time.process_time()
            for _ in range(n):
                fns[i]()
            samples[i].append((time.perf_counter() - start) / n)
            cpu_samples[i].append((time.process_time() - used) / n)
    if cpu is not None:
        cpu.extend(statistics.median(s) for s in cpu_samples)
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
    parser.add_argument("--bulk-mb", default="10,100",
                        help="array sizes for the bulk rows, MB, comma-separated (default 10,100)")
    parser.add_argument("--transfers", type=int, default=5,
                        help="bulk transfers per batch up to 10 MB, fewer above (about as many bytes; default 5)")
    parser.add_argument("--batches", type=int, default=5, help="bulk batches (default 5)")
    args = parser.parse_args(argv)
    cores = pin()
    if cores:
        os.sched_setaffinity(0, cores[0])  # the daemons inherit this
    with tempfile.TemporaryDirectory() as tmp:
        sec = _certs(pathlib.Path(tmp))
        plain_ns = start_nameserver(port=0, check_interval=5.0)
        tls_ns = start_nameserver(port=0, check_interval=5.0, security=sec["ns"])
        plain_d = start_daemon({"b.plain": "labservices:Dummy", "cam.plain": "bench_bulk:Camera"},
                               nameserver=plain_ns.address, spawn=True)
        tls_d = start_daemon({"b.tls": "labservices:Dummy", "cam.tls": "bench_bulk:Camera"},
                             nameserver=tls_ns.address, spawn=True, security=sec["bench"])
        raw_servers = [start(_RAW_SOCKET), start(f"FILES = {list(sec['bench'].files().values())!r}\n" + _RAW_TLS)]
        if cores:
            os.sched_setaffinity(0, cores[1])
        try:
            plain_lab = Lab(plain_ns.address, timeout=120)
            tls_lab = Lab(tls_ns.address, timeout=120, security=sec["me"])
            plain, tls = plain_lab.connect("b.plain"), tls_lab.connect("b.tls")
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
            bulk_rows, cipher = _bulk(args, (plain_lab, tls_lab), sec["me"], raw_servers)
        finally:
            for proc, _ in raw_servers:
                end_child(proc)
            tls_d.stop()
            plain_d.stop()
            tls_ns.stop()
            plain_ns.stop()
    print(f"{'':24} {'raw Pyro5':>10} {'plain':>10} {'TLS':>10} {'ratio TLS/plain':>16}")
    for label, raw_s, plain_s, tls_s in rows:
        print(f"{label:24} {raw_s * 1e6:8.0f}us {plain_s * 1e6:8.0f}us {tls_s * 1e6:8.0f}us "
              f"{tls_s / plain_s:16.2f}")
    where = (f"pinned: servers on core {sorted(cores[0])}, client on core {sorted(cores[1])}" if cores
             else "not pinned (one core)")
    print(f"\nbulk path (core.bulk), MB/s moved, {where}")
    print(f"{'':32} {'raw socket':>10} {'plain':>8} {'ratio':>6} {'raw TLS':>8} {'TLS':>8} {'ratio':>6} "
          f"{'ratio TLS/plain MB/s':>21}")
    for label, moved, times, _ in bulk_rows:
        raw_s, plain_s, raw_tls_s, tls_s = (moved / t / 1e6 for t in times)
        print(f"{label:32} {raw_s:10.0f} {plain_s:8.0f} {plain_s / raw_s:6.2f} {raw_tls_s:8.0f} {tls_s:8.0f} "
              f"{tls_s / raw_tls_s:6.2f} {tls_s / plain_s:21.2f}")
    print(f"TLS: {cipher}, as the lab's Security contexts negotiate it (raw TLS socket and bulk connection alike)")
    print("ratio: the bulk path's MB/s / its raw socket's (plain: a raw socket; TLS: a raw TLS socket with the same "
          "contexts, Python's ssl module); last column: TLS bulk / plain bulk")
    print(f"\nthis client's CPU per MB moved (us/MB; the servers' is not counted)\n{'':32} {'raw socket':>10} "
          f"{'plain':>8} {'raw TLS':>8} {'TLS':>8}")
    for label, moved, _, cpu in bulk_rows:
        print(f"{label:32} " + " ".join(f"{c / moved * 1e12:{w}.0f}" for c, w in zip(cpu, (10, 8, 8, 8))))
    return 0


def _bulk(args: argparse.Namespace, labs: tuple[Lab, Lab], me: Security,
          raw_servers: list[tuple[subprocess.Popen[str], str]]) -> tuple[list[tuple[str, int, list[float], list[float]]], str]:
    """Seconds per transfer of raw socket, plain bulk, raw TLS socket and TLS bulk, per size and direction,
    this client's CPU seconds per transfer for each, and the cipher the contexts negotiate."""
    raw_plain = RawSocket(int(raw_servers[0][1]))
    raw_tls = RawSocket(int(raw_servers[1][1]))
    tls_sock = me.client_context().wrap_socket(raw_tls.sock)
    raw_tls.sock = tls_sock
    plain, tls = labs[0].connect("cam.plain"), labs[1].connect("cam.tls")
    plain_echo, tls_echo = labs[0].connect("b.plain"), labs[1].connect("b.tls")
    rows = []
    for mb in (float(x) for x in args.bulk_mb.split(",")):
        arr = np.random.default_rng(0).random(max(1, int(mb * 1e6) // 8))
        size = arr.nbytes
        n = max(1, round(args.transfers * min(1.0, 10e6 / size)))

        def both(r: RawSocket) -> object:
            r.put(arr)
            return r.get(size)

        ways: list[tuple[str, int, Callable[[RawSocket], object], Callable[[Any, Any], object]]] = [
            ("result", 1, lambda r: r.get(size), lambda cam, _: cam.frame(size)),
            ("argument", 1, lambda r: r.put(arr), lambda cam, _: cam.sink(arr)),
            ("argument + result", 2, both, lambda _, dummy: dummy.echo(arr)),
        ]
        for label, times, raw_op, our_op in ways:
            fns: list[Callable[[], object]] = [
                functools.partial(raw_op, raw_plain), functools.partial(our_op, plain, plain_echo),
                functools.partial(raw_op, raw_tls), functools.partial(our_op, tls, tls_echo)]
            cpu: list[float] = []
            rows.append((f"{_mb(size)} array, {label}", size * times, _interleaved(fns, n, args.batches, cpu), cpu))
    name, version, _ = tls_sock.cipher() or ("?", "?", 0)
    return rows, f"{name} ({version})"


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:g} MB" if nbytes >= 1e6 else f"{nbytes / 1e3:g} KB"


if __name__ == "__main__":
    sys.exit(main())
