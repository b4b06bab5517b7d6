"""Applying an edited lab file: `pyrolab reload` (restart only what changed) next to a full restart (down + up).

Real processes on 127.0.0.1: a detached `pyrolab up` of a lab with N daemons; one daemon's entry is
edited, then the time until that service is back online with its new description is measured for
`pyrolab reload` and for `pyrolab down` + `pyrolab up --detach` (what a reload that restarts
everything costs, as PyroLab 0.5's does). There is no raw-Pyro5 column: Pyro5 has no lab file.
Run: python benchmarks/bench_reload.py [--daemons 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyrolab_jupyter import Lab

DAEMON = """\
  bench{i}:
    heartbeat: 0.5
    services:
      lab.meter{i}: {{class: "pyrolab_jupyter.instruments.sim:PowerMeter", description: "{text}"}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pyrolab(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pyrolab_jupyter.cli", *args], capture_output=True, text=True,
                          timeout=120)
    if done.returncode:
        raise RuntimeError(f"pyrolab {' '.join(args)}: {done.stderr}")


def _write(lab: Path, port: int, daemons: int, text: str) -> None:
    body = "".join(DAEMON.format(i=i, text=text if i == 0 else "steady") for i in range(daemons))
    lab.write_text(f"nameserver: {{host: 127.0.0.1, port: {port}, check_interval: 0.5}}\ndaemons:\n{body}")


def _until_described(address: str, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            entry = Lab(address, timeout=1).entry("lab.meter0")
            if entry and entry.get("status") == "online" and \
                    Lab(address, timeout=1).connect("lab.meter0").describe().get("description") == text:
                return
        except Exception:  # noqa: BLE001 - not back yet
            pass
        time.sleep(0.02)
    raise TimeoutError(f"lab.meter0 not back with {text!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemons", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        lab = Path(folder) / "lab.yaml"
        port = _free_port()
        address = f"127.0.0.1:{port}"
        _write(lab, port, args.daemons, "v0")
        _pyrolab("up", str(lab), "--detach")
        reloads, restarts = [], []
        try:
            _until_described(address, "v0")
            for i in range(1, args.repeat + 1):
                _write(lab, port, args.daemons, f"r{i}")
                start = time.monotonic()
                _pyrolab("reload", str(lab))
                _until_described(address, f"r{i}")
                reloads.append(time.monotonic() - start)
            for i in range(1, args.repeat + 1):
                _write(lab, port, args.daemons, f"f{i}")
                start = time.monotonic()
                _pyrolab("down", str(lab))
                _pyrolab("up", str(lab), "--detach")
                _until_described(address, f"f{i}")
                restarts.append(time.monotonic() - start)
        finally:
            subprocess.run([sys.executable, "-m", "pyrolab_jupyter.cli", "down", str(lab)], capture_output=True,
                           timeout=120)
    reload_s, restart_s = statistics.median(reloads), statistics.median(restarts)
    print(f"one of {args.daemons} daemons edited, until its service is back online with the edit "
          f"(median of {args.repeat}):")
    print(f"  pyrolab reload (restarts that daemon only): {reload_s:.2f} s")
    print(f"  full restart (down + up --detach, every process): {restart_s:.2f} s")
    print(f"  ratio reload/full restart: {reload_s / restart_s:.2f}; the other {args.daemons - 1} daemons and the "
          "nameserver keep running through a reload")
    return 0


if __name__ == "__main__":
    sys.exit(main())
