"""Array throughput: a service returning (and taking) numpy arrays, next to a raw socket, raw Pyro5 and PyroLab 0.5.

Every server runs in its own process on 127.0.0.1; where the machine has two
cores or more the servers are pinned to one and this client to another
(``os.sched_setaffinity``). Each batch runs the contenders in a rotated order;
the figure is the median batch. The raw socket is the ceiling: the server
sends a prebuilt buffer, the client allocates a fresh array and ``recv_into``
it (what any receiver of a new array must do). Raw Pyro5 gets its best case,
marshal and ``bytes``; PyroLab 0.5 (Pyro5 + serpent) cannot send an ndarray,
so it sends lists, and only at the small sizes (it runs at a few MB/s). PyroLab
0.5 ships a ``pyrolab`` command too, so its server and its client run in a venv
of their own that ``peers.py`` makes once (``--no-peers`` leaves it out).
Prints MB/s and the ratio to the raw socket. Run: python benchmarks/bench_bulk.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import socket
import struct
import subprocess
import sys
from collections.abc import Callable

import numpy as np
from bench_calls import _rotated as timed  # the same rotated, median-of-batches timing
from peers import PeerClient, peer_home, peer_python, peer_server, skipped
from rawpyro import end_child

HERE = pathlib.Path(__file__).resolve().parent


class Camera:
    """The pyrolab-jupyter service: a frame of any size (prebuilt), and a sink for arrays."""

    def __init__(self) -> None:
        self._frames: dict[int, np.ndarray] = {}

    def frame(self, nbytes: int) -> np.ndarray:
        """A frame of ``nbytes`` bytes of float64."""
        if nbytes not in self._frames:
            self._frames[nbytes] = np.random.default_rng(0).random(nbytes // 8)
        return self._frames[nbytes]

    def sink(self, data: np.ndarray) -> int:
        """Take an array; return its size in bytes."""
        return int(data.nbytes)


_RAW_SOCKET = """
import socket, struct, sys, threading
import numpy as np
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(8)
print(srv.getsockname()[1], flush=True)
frames = {}
def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = bytearray(9)
    while True:
        view = memoryview(head); got = 0
        while got < 9:
            n = conn.recv_into(view[got:])
            if not n: return
            got += n
        op, size = head[:1], struct.unpack(">Q", head[1:])[0]
        if op == b"G":
            if size not in frames:
                frames[size] = np.random.default_rng(0).random(size // 8)
            conn.sendall(memoryview(frames[size]).cast("B"))
        else:
            buf = np.empty(size, np.uint8); view = memoryview(buf); got = 0
            while got < size:
                got += conn.recv_into(view[got:])
            conn.sendall(b"k")
def accept():
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
sys.stdin.read()
"""

_RAW_PYRO5 = """
import sys, threading
from Pyro5.api import Daemon, expose
frames = {}
@expose
class Raw:
    def frame(self, nbytes):
        if nbytes not in frames:
            frames[nbytes] = bytes(nbytes)
        return frames[nbytes]
    def sink(self, data):
        return len(data)
daemon = Daemon(host="127.0.0.1", port=0)
print(daemon.register(Raw(), "raw"), flush=True)
threading.Thread(target=daemon.requestLoop, daemon=True).start()
sys.stdin.read()
daemon.shutdown()
"""

def pin() -> tuple[set[int], set[int]] | None:
    """(server cores, client cores) when there are two or more, else None."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        return None
    return {cores[-1]}, {cores[0]}


def start(code: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


class RawSocket:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get(self, size: int) -> np.ndarray:
        self.sock.sendall(b"G" + struct.pack(">Q", size))
        out = np.empty(size, np.uint8)
        view, got = memoryview(out), 0
        while got < size:
            got += self.sock.recv_into(view[got:])
        return out

    def put(self, arr: np.ndarray) -> None:
        self.sock.sendall(b"P" + struct.pack(">Q", arr.nbytes))
        self.sock.sendall(memoryview(arr).cast("B"))
        self.sock.recv(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1K,1M,10M,100M", help="comma-separated sizes (K, M suffixes)")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--budget", type=float, default=200e6, help="bytes moved per contender per batch, about")
    parser.add_argument("--no-peers", action="store_true", help="leave out PyroLab 0.5 (it needs a venv of its own)")
    args = parser.parse_args(argv)
    sizes = [int(float(s[:-1]) * {"K": 1e3, "M": 1e6}[s[-1]]) if s[-1] in "KM" else int(s)
             for s in args.sizes.split(",")]

    from Pyro5.api import Proxy

    from pyrolab_jupyter import Lab, start_daemon, start_nameserver

    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    python, why = (None, "--no-peers") if args.no_peers else peer_python()
    cores = pin()
    if cores:
        os.sched_setaffinity(0, cores[0])  # the servers inherit this
    procs = []
    stack = contextlib.ExitStack()
    ns = start_nameserver(host="127.0.0.1", port=0, check_interval=5)
    daemon = start_daemon({"cam": "bench_bulk:Camera"}, nameserver=ns.uri, spawn=True)
    try:
        proc, port = start(_RAW_SOCKET)
        procs.append(proc)
        proc, raw_uri = start(_RAW_PYRO5)
        procs.append(proc)
        env05: dict[str, str] = {}
        uri05 = ""  # PyroLab 0.5's daemon, in the peer venv
        if python is not None:
            env05 = stack.enter_context(peer_home())
            uri05 = stack.enter_context(peer_server(python, env05))
        if cores:
            os.sched_setaffinity(0, cores[1])
        raw_sock = RawSocket(int(port))
        raw = Proxy(raw_uri)
        raw._pyroSerializer = "marshal"
        raw._pyroTimeout = 120
        cam = Lab(ns.uri).connect("cam", timeout=120)
        old = stack.enter_context(PeerClient(python, env05)) if python is not None else None
        where = (f"pinned: servers on core {sorted(cores[0])}, client on core {sorted(cores[1])}" if cores
                 else "not pinned (one core)")
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, numpy {np.__version__}; {where}")
        if old is None:
            print(skipped(why))
        print(f"{'transfer':28s} {'raw socket':>12s} {'pyrolab-jupyter':>16s} {'ratio':>6s} "
              f"{'raw Pyro5 marshal':>18s} {'ratio':>6s} {'PyroLab 0.5':>12s} {'ratio':>6s}")
        for direction in ("result", "argument"):
            for size in sizes:
                arr = np.random.default_rng(1).random(max(1, size // 8))
                payload = bytes(size)
                if direction == "result":
                    contenders: dict[str, Callable[[], object]] = {
                        "socket": lambda s=size: raw_sock.get(s),
                        "ours": lambda s=size: cam.frame(s),
                        "pyro5": lambda s=size: raw.frame(s),
                    }
                    if old is not None and size <= 1_000_000:
                        contenders["old"] = old.contender(uri05, "serpent", "call", "frame", size)
                else:
                    contenders = {
                        "socket": lambda a=arr: raw_sock.put(a),
                        "ours": lambda a=arr: cam.sink(a),
                        "pyro5": lambda p=payload: raw.sink(p),
                    }
                    if old is not None and size <= 1_000_000:  # random floats, as arr
                        contenders["old"] = old.contender(uri05, "serpent", "call", "sink", {"floats": arr.size})
                n = max(2, min(500, int(args.budget // max(size, 1))))
                if "old" in contenders and size >= 1_000_000:
                    n = 2
                t = timed(contenders, n, args.batches)
                rate = {k: size / v / 1e6 for k, v in t.items()}

                def cell(k: str, rate: dict[str, float] = rate) -> str:
                    return f"{rate[k]:9.1f} MB/s {rate[k] / rate['socket']:6.2f}" if k in rate else \
                        f"{'n/a':>14s} {'':6s}"
                label = f"{direction} {_size(size)}"
                print(f"{label:28s} {rate['socket']:7.1f} MB/s {cell('ours'):>23s} {cell('pyro5'):>25s} "
                      f"{cell('old'):>19s}")
        print("ratio: MB/s of that column / MB/s of the raw socket (1.00 = socket speed); "
              "PyroLab 0.5 sends lists (serpent) from its own venv, n/a above 1 MB")
    finally:
        stack.close()
        daemon.stop()
        ns.stop()
        for proc in procs:
            end_child(proc)
    return 0


def _size(n: int) -> str:
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n / 1e3:g} KB"


if __name__ == "__main__":
    sys.exit(main())
