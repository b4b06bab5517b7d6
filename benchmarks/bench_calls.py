"""Per-call latency and array throughput of pyrolab-jupyter next to raw Pyro5 and PyroLab 0.5, in the same run.

Every server runs in its own process on 127.0.0.1, pinned to one core and
this client to another where there are two or more; batches run in rotated
order, the figure is the median batch. Raw Pyro5 gets its best case: a plain
exposed object, a proxy made once, each of its serializers, and bytes instead
of arrays (it cannot send numpy at all). marshal and serpent run here; msgpack
(not one of our dependencies) and PyroLab 0.5 (it ships a ``pyrolab`` command
too) run in a venv of their own that ``peers.py`` makes once, server and client
there, the client timing its batches and reporting them back. ``--no-peers``
leaves those two out. Prints ratios (pyrolab / raw; 1.00 means equal).
Run: python benchmarks/bench_calls.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import Pyro5
from peers import PeerClient, peer_home, peer_python, peer_server, skipped
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
    """Median seconds per call of each, over ``batches`` batches of n calls, run in rotated order.

    A contender with a ``batch(n)`` method (one in another process, ``peers.PeerClient``) times its
    own batch there and returns the seconds per call.
    """
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for b in range(batches):
        for name in names[b % len(names):] + names[:b % len(names)]:
            fn = contenders[name]
            batch = getattr(fn, "batch", None)
            if batch is not None:
                samples[name].append(batch(n))
                continue
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(s) for name, s in samples.items()}


def _peer_msgpack(python: pathlib.Path) -> str:
    """"" when the peer venv's Pyro5 speaks msgpack, else the line saying it does not."""
    probe = subprocess.run([str(python), "-c", "import Pyro5, Pyro5.serializers as s; "
                            "print(Pyro5.__version__, 'msgpack' in s.serializers)"],
                           capture_output=True, text=True, timeout=60)
    version, _, has = probe.stdout.strip().partition(" ")
    if probe.returncode or has != "True":
        return f"raw Pyro5 msgpack: n/a (Pyro5 {version or '?'} in the peer venv has no msgpack serializer)"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--no-peers", action="store_true",
                        help="leave out PyroLab 0.5 and raw Pyro5 msgpack (they need a venv of their own)")
    args = parser.parse_args(argv)

    python, why = (None, "--no-peers") if args.no_peers else peer_python()
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned = len(cores) >= 2
    if pinned:
        os.sched_setaffinity(0, {cores[-1]})  # the servers started below inherit this core
    stack = contextlib.ExitStack()
    try:
        _, raw_uri = stack.enter_context(raw_pyro())
        ns = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
        stack.callback(ns.stop)
        daemon = start_daemon({"bench": "labservices:Dummy"}, nameserver=ns.uri, spawn=True)
        stack.callback(daemon.stop)
        peer_uris: dict[str, tuple[str, str]] = {}  # column -> (uri, serializer), served and called in the peer venv
        no_msgpack = ""
        env: dict[str, str] = {}
        if python is not None:
            no_msgpack = _peer_msgpack(python)
            env = stack.enter_context(peer_home())
            if not no_msgpack:
                peer_uris["msgpack"] = (stack.enter_context(raw_pyro(python=python))[1], "msgpack")
            peer_uris["PyroLab 0.5"] = (stack.enter_context(peer_server(python, env)), "serpent")
        if pinned:
            os.sched_setaffinity(0, {cores[0]})  # this client and the peer client below
        peer = stack.enter_context(PeerClient(python, env)) if python is not None else None
        raws = {}
        for name in ("marshal", "serpent"):
            raw = Proxy(raw_uri)
            raw._pyroSerializer = name
            raw._pyroTimeout = 10
            raws[name] = raw
        ours = Lab(ns.uri).connect("bench")
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, Pyro5 {Pyro5.__version__}; "
              + (f"servers pinned to core {cores[-1]}, client to core {cores[0]}" if pinned else "not pinned (one core)"))
        if python is None:
            print(skipped(why))
            print(f"raw Pyro5 msgpack: skipped ({why})")
        elif no_msgpack:
            print(no_msgpack)
        ops: list[tuple[str, Callable[[Proxy], object], Callable[[], object], tuple[str, str, tuple[object, ...]]]] = [
            ("method call set_power(3.0)", lambda r: r.set_power(3.0), lambda: ours.set_power(3.0),
             ("call", "set_power", (3.0,))),
            ("property read .power", lambda r: r._pyroInvoke("__getattr__", ("power",), {}), lambda: ours.power,
             ("get", "power", ())),
        ]
        columns = [*raws, *peer_uris]
        rows = []
        for label, raw_op, our_op, (kind, member, call_args) in ops:
            contenders: dict[str, Callable[[], object]] = {"ours": our_op}
            for name, raw in raws.items():
                contenders[name] = lambda r=raw, op=raw_op: op(r)
            for name, (uri, serializer) in peer_uris.items():
                assert peer is not None
                contenders[name] = peer.contender(uri, serializer, kind, member, *call_args)
            rows.append((label, _rotated(contenders, args.calls, args.batches)))
        header = f"{'operation':30s} {'pyrolab':>9s} {'calls/s':>8s}"
        for name in columns:
            title = name if name == "PyroLab 0.5" else "raw Pyro5 " + name
            header += f" {title:>18s} {'ratio':>6s}"
        print(header)
        for label, t in rows:
            line = f"{label:30s} {t['ours'] * 1e6:7.0f}us {1 / t['ours']:8.0f}"
            for name in columns:
                line += f" {t[name] * 1e6:16.0f}us {t['ours'] / t[name]:6.2f}"
            print(line)
        print("ratio: pyrolab time / that column's time (1.00 = as fast; below 1 = faster); "
              + ("msgpack and PyroLab 0.5 (serpent) run server and client in their own venv"
                 if peer_uris else "marshal and serpent only"))
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
        stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
