"""`%pyrolab connect NAME` → panel, timed in a real IPython kernel (what a user waits for after Shift-Enter).

A nameserver runs here and a daemon with ``--services`` services in its own
process; a kernel is started through jupyter_client, loads the extension and
connects to each service once (a fresh connection each time: describe, first
read, subscription, widgets). The time is from sending the cell to the kernel
going idle with the panel's widget view displayed, less an empty cell's round
trip (the baseline printed next to it). Run: python benchmarks/bench_kernel.py
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time
from typing import Any

from jupyter_client.manager import start_new_kernel

from pyrolab_jupyter import start_daemon, start_nameserver

HERE = pathlib.Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "tests" / "support"), os.environ.get("PYTHONPATH", "")])


def _run(kc: Any, code: str) -> tuple[float, list[str]]:
    """Seconds until the kernel is idle again, and the output message types seen."""
    seen: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        seen.append(msg["msg_type"])
        if msg["msg_type"] == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"])[-2000:])

    start = time.perf_counter()
    reply = kc.execute_interactive(code, timeout=120, output_hook=hook)
    took = time.perf_counter() - start
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {code}")
    return took, seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10, help="connects to time (one per service)")
    args = parser.parse_args(argv)
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
    daemon = start_daemon({f"bench.k{i}": "labservices:Dummy" for i in range(args.services)},
                          nameserver=ns.uri, spawn=True)
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120)
    try:
        load, _ = _run(kc, "%load_ext pyrolab_jupyter")
        _run(kc, f"%pyrolab use {ns.address}")
        empty = statistics.median(_run(kc, "pass")[0] for _ in range(5))
        connects = []
        for i in range(args.services):
            took, seen = _run(kc, f"%pyrolab connect bench.k{i}")
            if not any(kind in ("display_data", "execute_result") for kind in seen):
                raise RuntimeError(f"no panel displayed for bench.k{i}: {seen}")
            connects.append(took - empty)
        print(f"kernel: %load_ext pyrolab_jupyter {load * 1e3:.0f} ms; empty cell round trip {empty * 1e3:.1f} ms")
        print(f"%pyrolab connect → panel in a kernel: median {statistics.median(connects) * 1e3:.1f} ms, "
              f"max {max(connects) * 1e3:.1f} ms over {len(connects)} services (empty cell subtracted)")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
        daemon.stop()
        ns.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
