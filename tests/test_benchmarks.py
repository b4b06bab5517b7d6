"""The benchmark scripts still run and still print their comparisons (figures are not judged here).

bench_calls and bench_bulk also run PyroLab 0.5 and raw Pyro5 msgpack from the venv of their own that
benchmarks/peers.py makes once (about 15 s from pip's cache, then reused); when it cannot be made
they must say so and go on, which is checked separately.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.network


@pytest.mark.parametrize("script, args, expected", [
    pytest.param("bench_calls.py", ["--calls", "10", "--batches", "2"],
                 ["raw Pyro5", "ratio", "method call set_power", "16 MiB array"],
                 marks=pytest.mark.timeout(900)),  # the first run makes the peer venv
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
    pytest.param("bench_bulk.py", ["--sizes", "1K,300K", "--batches", "1", "--budget", "1e6"],
                 ["raw socket", "pyrolab-jupyter", "raw Pyro5 marshal", "result 300 KB", "argument 1 KB"],
                 marks=pytest.mark.timeout(900)),
    ("bench_scale.py", ["--daemons", "4", "--services", "2", "--per-process", "2", "--repeat", "1"],
     ["nameserver listing, 8 services", "offline detection at scale"]),
    ("bench_kernel.py", ["--services", "1"], ["%pyrolab connect → panel in a kernel", "load_ext"]),
    ("bench_cpu.py", ["--calls", "50", "--rounds", "1"], ["CPU per call", "raw Pyro5 marshal", "pyrolab-jupyter"]),
    ("bench_modes.py", ["--calls", "10"], ["raw Pyro5", "ratio", "session mode", "two nameservers"]),
    ("bench_overhead.py", ["--calls", "10", "--batches", "1", "--cpu-calls", "20"],
     ["raw Pyro5 marshal", "cost of the marshal walk", "cost of the audit (file)", "audit lines written"]),
], ids=["calls", "health", "abuse", "panel", "truth", "safety", "adapters", "tls", "server-model", "reload",
        "bulk", "scale", "kernel", "cpu", "modes", "overhead"])
def test_benchmark_script_runs(script, args, expected):
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                          capture_output=True, text=True, timeout=850)
    assert done.returncode == 0, done.stderr[-2000:]
    for text in expected:
        assert text in done.stdout, done.stdout
    if script in ("bench_calls.py", "bench_bulk.py"):
        _check_peers(script, done.stdout)


def _check_peers(script: str, out: str) -> None:
    """PyroLab 0.5 (and for bench_calls raw Pyro5 msgpack) measured from the peer venv, or a line saying why not."""
    if "PyroLab 0.5: skipped (" in out:
        return  # no venv here (no network, say): the benchmark said so and carried on
    if script == "bench_calls.py":
        header = next(line for line in out.splitlines() if line.startswith("operation"))
        assert "PyroLab 0.5" in header and "raw Pyro5 msgpack" in header, out
        for row in ("method call set_power(3.0)", "property read .power"):
            line = next(line for line in out.splitlines() if line.startswith(row))
            assert len(re.findall(r"\d+us", line)) == 5, out  # ours, marshal, serpent, msgpack, PyroLab 0.5
    else:
        for row in ("result 1 KB", "result 300 KB", "argument 1 KB", "argument 300 KB"):
            line = next(line for line in out.splitlines() if line.startswith(row))
            assert line.count("MB/s") == 4 and "n/a" not in line, out  # socket, ours, Pyro5, PyroLab 0.5


@pytest.mark.parametrize("script", ["bench_calls.py", "bench_bulk.py"])
def test_benchmark_without_peer_venv_says_so_and_goes_on(script, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # the peer venv's cache cannot be made under a file
    extra = ["--calls", "5", "--batches", "1"] if script == "bench_calls.py" else \
        ["--sizes", "1K", "--batches", "1", "--budget", "1e4"]
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *extra], capture_output=True, text=True,
                          timeout=110, env={**os.environ, "PYROLAB_BENCH_CACHE": str(blocker / "cache")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "PyroLab 0.5: skipped (cannot make a venv under" in done.stdout, done.stdout
    assert "ratio" in done.stdout, done.stdout
