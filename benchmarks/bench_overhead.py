"""What the wire checks and the audit trail cost per call: the same daemon with and without them, same run.

Issue 14 allows the hardening (message checks, limits, server model) and the
audit of state-changing calls at most 5% of a call. Four daemons, each in
its own process, serve the same service (``set_power`` is audited, ``power``
is a read): as shipped with the audit written to a JSON-lines file (what
``pyrolab up`` does); with the audit in memory only (``start_daemon`` without a
file); without the marshal safety walk (``frames.check_marshal``
made a no-op: the header checks stay, they frame the messages); without the
audit (``AuditLog.record`` a no-op). Raw Pyro5 marshal is the yardstick. Batches
run in rotated order; medians and ratios are printed, plus each daemon's CPU per
call from /proc (Linux). The server model itself (GuardedServer against Pyro5's
thread server) is ``bench_server_model.py``. Run: python benchmarks/bench_overhead.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator

from bench_calls import _rotated
from rawpyro import end_child, raw_proxy, raw_pyro

from pyrolab_jupyter import Lab, start_nameserver

HERE = pathlib.Path(__file__).resolve().parent
SUPPORT = HERE.parent / "tests" / "support"

_DAEMON = r"""
import sys
variant, nameserver, audit_path = sys.argv[1:4]
from pyrolab_jupyter.core import audit, frames
if variant == "nochecks":
    frames.check_marshal = lambda data, budget: None
elif variant == "noaudit":
    audit.AuditLog.record = lambda self, *args, **kwargs: {}
import labservices
from pyrolab_jupyter.core.daemon import LabDaemon
daemon = LabDaemon(host="127.0.0.1", port=0, nameserver=nameserver, audit=audit_path or None)
daemon.add(variant, labservices.Dummy())
daemon.start()
daemon.wait_registered(30)
print("ready", flush=True)
sys.stdin.read()
daemon.stop()
"""

VARIANTS = {"full": "as shipped (audit to a file)", "memory": "audit in memory only (no file)",
            "nochecks": "without the marshal walk", "noaudit": "without the audit"}


@contextlib.contextmanager
def _daemon(variant: str, nameserver: str, audit_path: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", _DAEMON, variant, nameserver, audit_path], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {variant} daemon did not start")
        yield proc
    finally:
        end_child(proc, grace=15)


def _cpu_seconds(pid: int) -> float | None:
    stat = pathlib.Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_per_call(pid: int, call: Callable[[], object], n: int) -> float | None:
    before = _cpu_seconds(pid)
    for _ in range(n):
        call()
    after = _cpu_seconds(pid)
    return None if before is None or after is None else (after - before) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--batches", type=int, default=9)
    parser.add_argument("--cpu-calls", type=int, default=5000)
    args = parser.parse_args(argv)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned = len(cores) >= 2
    if pinned:
        os.sched_setaffinity(0, {cores[-1]})  # the servers started below inherit this core
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        raw_proc, raw_uri = stack.enter_context(raw_pyro())
        ns = start_nameserver(host="127.0.0.1", port=0, check_interval=30)
        stack.callback(ns.stop)
        procs = {v: stack.enter_context(_daemon(v, ns.address, "" if v == "memory" else
                                                str(pathlib.Path(tmp) / f"{v}.audit.jsonl"))) for v in VARIANTS}
        if pinned:
            os.sched_setaffinity(0, {cores[0]})
        raw = raw_proxy(raw_uri)
        lab = Lab(ns.uri)
        remotes = {v: lab.connect(v) for v in VARIANTS}
        print(f"machine: {os.cpu_count()} cores; "
              + (f"daemons pinned to core {cores[-1]}, client to core {cores[0]}" if pinned else "not pinned"))
        for op, raw_call, ours in [
            ("set_power(3.0), audited", lambda: raw.set_power(3.0), lambda r: r.set_power(3.0)),
            ("read .power", lambda: raw._pyroInvoke("__getattr__", ("power",), {}), lambda r: r.power),
        ]:
            contenders: dict[str, Callable[[], object]] = {"raw": raw_call}
            contenders.update({v: (lambda r=remotes[v]: ours(r)) for v in VARIANTS})
            for fn in contenders.values():
                for _ in range(50):
                    fn()
            t = _rotated(contenders, args.calls, args.batches)
            print(f"\n{op}: median per call, {args.batches} batches of {args.calls}")
            print(f"  {'daemon':34s} {'call':>8s} {'/raw':>6s} {'/full':>6s} {'daemon CPU':>11s}")
            pids = {"raw": raw_proc.pid, **{v: p.pid for v, p in procs.items()}}
            for name, seconds in t.items():
                cpu = _cpu_per_call(pids[name], contenders[name], args.cpu_calls)
                label = "raw Pyro5 marshal" if name == "raw" else VARIANTS[name]
                cpu_text = f"{cpu * 1e6:9.1f}us" if cpu is not None else "        n/a"
                print(f"  {label:34s} {seconds * 1e6:6.0f}us {seconds / t['raw']:6.2f} {seconds / t['full']:6.2f} "
                      f"{cpu_text}")
            for what, with_it, without in [("the marshal walk", "full", "nochecks"),
                                           ("the audit (file)", "full", "noaudit"),
                                           ("the audit (memory only)", "memory", "noaudit")]:
                share = t[with_it] / t[without] - 1
                print(f"  cost of {what}: {share * 100:+.1f}% of a call ({VARIANTS[with_it]} "
                      f"{t[with_it] * 1e6:.0f}us, {VARIANTS[without]} {t[without] * 1e6:.0f}us)")
        stack.close()  # the daemons stop: the full one writes what it still holds
        trail = pathlib.Path(tmp) / "full.audit.jsonl"
        lines = sum(1 for _ in open(trail, encoding="utf-8")) if trail.exists() else 0
        print(f"\naudit lines written by the full daemon: {lines}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
