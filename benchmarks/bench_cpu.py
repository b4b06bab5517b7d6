"""CPU time per call on each side (client and daemon), pyrolab-jupyter next to raw Pyro5 marshal.

Wall-clock latency on a shared machine swings by a third between runs; CPU
time per call barely moves, so this is where the per-call overhead is found
and its removal measured. Client: ``time.process_time``; server: the daemon
process's utime + stime from /proc (Linux only; elsewhere it says so). The
call is ``set_power(3.0)``: validation, lock check, gate and announcement.
Run: python benchmarks/bench_cpu.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import sys
import time
from collections.abc import Callable

from Pyro5.api import Proxy
from rawpyro import raw_pyro

from pyrolab_jupyter import Lab, start_daemon, start_nameserver

HERE = pathlib.Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "tests" / "support"), os.environ.get("PYTHONPATH", "")])


def _cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not pathlib.Path(f"/proc/{os.getpid()}/stat").exists():
        print("CPU per call: not measured (needs Linux /proc)")
        return 0
    raw_stack = contextlib.ExitStack()
    raw_proc, raw_uri = raw_stack.enter_context(raw_pyro())
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=60)
    daemon = start_daemon({"bench": "labservices:Dummy"}, nameserver=ns.uri, spawn=True)
    try:
        raw = Proxy(raw_uri)
        raw._pyroSerializer = "marshal"
        raw._pyroTimeout = 10
        ours = Lab(ns.uri).connect("bench")
        sides: dict[str, tuple[Callable[[], object], int]] = {
            "raw Pyro5 marshal": (lambda: raw.set_power(3.0), raw_proc.pid),
            "pyrolab-jupyter": (lambda: ours.set_power(3.0), daemon.process.pid),
        }
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for r in range(args.rounds):
            for name in list(sides)[r % 2:] + list(sides)[:r % 2]:
                call, pid = sides[name]
                for _ in range(min(200, args.calls)):
                    call()
                c0, s0 = time.process_time(), _cpu_seconds(pid)
                for _ in range(args.calls):
                    call()
                samples[name].append(((time.process_time() - c0) / args.calls, (_cpu_seconds(pid) - s0) / args.calls))
        print(f"CPU per call set_power(3.0), median of {args.rounds} rounds of {args.calls} "
              f"(resolution {1e6 / os.sysconf('SC_CLK_TCK') / args.calls:.1f} us):")
        base = None
        for name, values in samples.items():
            client = sorted(v[0] for v in values)[len(values) // 2] * 1e6
            server = sorted(v[1] for v in values)[len(values) // 2] * 1e6
            base = base or (client, server)
            print(f"  {name:18s} client {client:6.1f} us ({client / max(base[0], 1e-9):.2f}x)   "
                  f"server {server:6.1f} us ({server / max(base[1], 1e-9):.2f}x)")
    finally:
        daemon.stop()
        ns.stop()
        raw_stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
