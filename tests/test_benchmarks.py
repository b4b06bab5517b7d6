"""The benchmark scripts still run and still print their comparisons (figures are not judged here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.network


@pytest.mark.parametrize("script, args, expected", [
    ("bench_calls.py", ["--calls", "10"], ["raw Pyro5", "ratio", "method call set_power", "16 MiB array"]),
    ("bench_health.py", ["--repeat", "1", "--interval", "0.3"], ["offline detection", "repopulated"]),
    ("bench_abuse.py", ["--idle", "20", "--slow", "5", "--fuzz", "40", "--oneways", "50"],
     ["forged marshal tuple", "compressed bomb", "fresh client", "one-way calls", "kill -9"]),
    ("bench_panel.py", ["--repeat", "2", "--seconds", "0.3"], ["panel build, 40 members", "live updates"]),
    ("bench_truth.py", ["--changes", "3"], ["raw Pyro5 call round trip", "subscriber sees it", "10 silent"]),
    ("bench_safety.py", ["--calls", "10"], ["raw Pyro5", "ratio", "a soft limit", "an interlock"]),
    ("bench_adapters.py", ["--calls", "10", "--repeat", "1"], ["raw Pyro5", "ratio adapted", "set_voltage", "adapt()"]),
    ("bench_tls.py",
     ["--calls", "10", "--connects", "3", "--bulk-mb", "0.5", "--transfers", "1", "--batches", "1"],
     ["ratio TLS/plain", "connect + handshake", "method call set_power", "500 KB array, argument + result"]),
    ("bench_server_model.py", ["--calls", "10", "--hang", "1"],
     ["Pyro5 thread server", "Pyro5 multiplex server", "pyrolab GuardedServer", "hung call"]),
    ("bench_reload.py", ["--daemons", "2", "--repeat", "1"], ["pyrolab reload", "full restart", "ratio"]),
    ("bench_bulk.py", ["--sizes", "1K,300K", "--batches", "1", "--budget", "1e6"],
     ["raw socket", "pyrolab-jupyter", "raw Pyro5 marshal", "result 300 KB", "argument 1 KB"]),
    ("bench_scale.py", ["--daemons", "4", "--services", "2", "--per-process", "2", "--repeat", "1"],
     ["nameserver listing, 8 services", "offline detection at scale"]),
    ("bench_kernel.py", ["--services", "1"], ["%pyrolab connect → panel in a kernel", "load_ext"]),
    ("bench_cpu.py", ["--calls", "50", "--rounds", "1"], ["CPU per call", "raw Pyro5 marshal", "pyrolab-jupyter"]),
    ("bench_modes.py", ["--calls", "10"], ["raw Pyro5", "ratio", "session mode", "two nameservers"]),
], ids=["calls", "health", "abuse", "panel", "truth", "safety", "adapters", "tls", "server-model", "reload",
        "bulk", "scale", "kernel", "cpu", "modes"])
def test_benchmark_script_runs(script, args, expected):
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for text in expected:
        assert text in done.stdout, done.stdout
