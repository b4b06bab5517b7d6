"""What mutual TLS costs: per connection (handshake) and per call, TLS lab next to a plain lab, same run.

A plain lab and a TLS lab (certificates from a throw-away CA made with
``pyrolab certs``) run side by side, each daemon in its own process; raw Pyro5
(plain, a proxy made once) is the floor. Prints medians and the TLS/plain
ratios. Run: python benchmarks/bench_tls.py
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
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sec = _certs(pathlib.Path(tmp))
        plain_ns = start_nameserver(port=0, check_interval=5.0)
        tls_ns = start_nameserver(port=0, check_interval=5.0, security=sec["ns"])
        plain_d = start_daemon({"b.plain": "labservices:Dummy"}, nameserver=plain_ns.address, spawn=True)
        tls_d = start_daemon({"b.tls": "labservices:Dummy"}, nameserver=tls_ns.address, spawn=True,
                             security=sec["bench"])
        try:
            plain = Lab(plain_ns.address).connect("b.plain")
            tls = Lab(tls_ns.address, security=sec["me"]).connect("b.tls")
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
        finally:
            tls_d.stop()
            plain_d.stop()
            tls_ns.stop()
            plain_ns.stop()
    print(f"{'':24} {'raw Pyro5':>10} {'plain':>10} {'TLS':>10} {'ratio TLS/plain':>16}")
    for label, raw_s, plain_s, tls_s in rows:
        print(f"{label:24} {raw_s * 1e6:8.0f}us {plain_s * 1e6:8.0f}us {tls_s * 1e6:8.0f}us "
              f"{tls_s / plain_s:16.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
