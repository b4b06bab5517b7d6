"""Body of a daemon process started by ``start_daemon(..., spawn=True)``: serve until the parent's pipe closes."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from pyrolab_jupyter.hosting import host_services


def main(order: dict[str, Any]) -> int:
    """Body of a spawned daemon process: serve until the parent's pipe closes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s daemon %(levelname)s %(message)s")
    try:
        daemon = host_services(order["services"], order["nameserver"], order["host"], order["port"], order["heartbeat"])
    except Exception as err:
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        return 1
    daemon.wait_registered(order["register_timeout"])
    print(json.dumps({"uris": daemon.uris, "address": daemon.address}), flush=True)
    try:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
    except KeyboardInterrupt:
        pass
    daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
