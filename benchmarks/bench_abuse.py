"""What a broken or hostile network costs a daemon: the figures of issue 9, on whatever code is importable.

Run it on this tree (``python benchmarks/bench_abuse.py``) and on an older
checkout (``PYTHONPATH=/path/to/old python benchmarks/bench_abuse.py``) to
compare. Every scenario runs against a daemon in a child process on
127.0.0.1; sizes are scaled down from the issue's (a 50-million-item forged
tuple, a 100 MiB compression bomb) so an unprotected server survives them.
Prints one line per figure; asserts nothing (tests/core/test_abuse.py does).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

SUPPORT = Path(__file__).resolve().parent.parent / "tests" / "support"
sys.path.insert(0, str(SUPPORT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH", ""), str(SUPPORT)) if p)

from Pyro5 import protocol
from Pyro5.api import Proxy

import pyrolab_jupyter
from pyrolab_jupyter import Lab, start_daemon, start_nameserver

SERVICES = {"t.dummy": "labservices:Dummy", "t.other": "labservices:Dummy", "t.spare": "labservices:Dummy"}


def status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return -1


def frame(msg_type: int, serializer: int, flags: int, body: bytes) -> bytes:
    return struct.pack(protocol._header_format, b"PYRO", protocol.PROTOCOL_VERSION, msg_type, serializer, flags, 1,
                       len(body), 0, b"\0" * 16, 0, protocol._magic_number) + body


def host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def send_raw(address: str, data: bytes, wait: float = 3.0) -> None:
    with socket.create_connection(host_port(address), timeout=5) as sock, contextlib.suppress(OSError):
        sock.sendall(data)
        sock.settimeout(wait)
        sock.recv(100)


def served(address: str, timeout: float = 3.0) -> str:
    start = time.monotonic()
    try:
        with Proxy(f"PYRO:Pyro.Daemon@{address}") as proxy:
            proxy._pyroTimeout = timeout
            proxy.ping()
        return f"served in {time.monotonic() - start:.2f} s"
    except Exception as err:  # noqa: BLE001
        return f"NOT served ({type(err).__name__}: {str(err)[:60]})"


def memory_attacks(handle: Any) -> None:
    pid, address = handle.pid, handle.address  # the smaller attack first: VmHWM is a high-water mark
    base = status(pid, "VmHWM")
    bomb = zlib.compress(b"\0" * (100 * 1024 * 1024), 9)
    send_raw(address, frame(protocol.MSG_CONNECT, 2, protocol.FLAGS_COMPRESSED, bomb))
    time.sleep(0.5)
    print(f"compressed bomb ({len(bomb) // 1024} KiB -> 100 MiB): peak RSS +{(status(pid, 'VmHWM') - base) / 1024:.0f}"
          f" MiB; {served(address)}")
    base = status(pid, "VmHWM")
    body = b"(" + struct.pack("<i", 50_000_000)  # a tuple claiming 50 million items, 5 bytes
    send_raw(address, frame(protocol.MSG_CONNECT, 2, 0, body))
    time.sleep(0.5)
    print(f"forged marshal tuple (45-byte frame, 50 M items): peak RSS +{(status(pid, 'VmHWM') - base) / 1024:.0f} MiB;"
          f" {served(address)}")


def attackers(address: str, count: int, spread: int = 10) -> list[socket.socket]:
    """``count`` connections from ``spread`` loopback addresses (127.0.0.2 ...), as from several hosts."""
    socks = []
    for i in range(count):
        sock = socket.socket()
        try:
            sock.settimeout(5)
            sock.bind((f"127.0.0.{2 + i % spread}", 0))
            sock.connect(host_port(address))
        except OSError:
            sock.close()
            break
        socks.append(sock)
    return socks


def starvation(handle: Any, idle: int, slow: int) -> None:
    socks = []
    try:
        socks = attackers(handle.address, idle + slow)
        stop = threading.Event()

        def drip() -> None:
            while not stop.wait(1.0):
                for sock in socks[idle:]:
                    with contextlib.suppress(OSError):
                        sock.send(b"P")

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        time.sleep(1.5)
        print(f"{idle} idle + {slow} slow sockets ({len(socks)} connected): fresh client {served(handle.address)};"
              f" server threads {status(handle.pid, 'Threads')}")
        stop.set()
        dripper.join()
    finally:
        for sock in socks:
            sock.close()


def hung_method(handle: Any, lab: Lab) -> None:
    hung = lab.connect("t.dummy", timeout=2.0)
    threading.Thread(target=lambda: _quiet(hung.sleep, 30), daemon=True).start()
    time.sleep(0.3)
    outcomes: Counter[str] = Counter()

    def retry() -> None:
        for _ in range(3):
            outcomes[_quiet(lambda: lab.connect("t.dummy", timeout=1.0).set_power(1.0))] += 1

    workers = [threading.Thread(target=retry, daemon=True) for _ in range(30)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    other = _quiet(lambda: lab.connect("t.other", timeout=5.0).set_power(2.0))
    print(f"hung method + 30 retrying clients x3: {dict(outcomes)}; other service: {other}; "
          f"ping {served(handle.address)}; server threads {status(handle.pid, 'Threads')}")


def _quiet(call: Any, *args: Any) -> str:
    try:
        call(*args)
        return "ok"
    except Exception as err:  # noqa: BLE001
        return type(err).__name__


def oneways(handle: Any, count: int) -> None:
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], status(handle.pid, "Threads"))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with Proxy(handle.uris["t.spare"]) as proxy:
        proxy._pyroTimeout = 10
        proxy._pyroBind()
        proxy._pyroOneway.add("sleep")
        for _ in range(count):
            proxy.sleep(0.5)
    time.sleep(3)
    done.set()
    watcher.join()
    print(f"{count:,} one-way calls: peak server threads {peak[0]}")


def silent_nameserver() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)
    address = "127.0.0.1:%d" % listener.getsockname()[1]
    handle = start_daemon({"t.dummy": "labservices:Dummy"}, nameserver=address, spawn=True, register_timeout=0.1,
                          heartbeat=60)
    try:
        lab = Lab(address)
        from pyrolab_jupyter.core.client import RemoteService
        remote = RemoteService(lab, "t.dummy", handle.uris["t.dummy"], 10.0)
        start = time.monotonic()
        remote.lock(lease=30)
        remote.unlock()
        print(f"lock() + unlock() with a silent nameserver: {time.monotonic() - start:.2f} s")
    finally:
        handle.stop()
        listener.close()


def kill_restart(ns: Any) -> None:
    state = Path(f"/tmp/bench_abuse_{os.getpid()}.locks.json")
    port = _free_port()
    order = {"t.dummy": "labservices:Dummy"}
    extra: dict[str, Any] = {"state_file": str(state)} if "state_file" in start_daemon.__code__.co_varnames else {}
    first = start_daemon(order, nameserver=ns.address, port=port, spawn=True, **extra)
    lab = Lab(ns.address, timeout=5)
    mine = lab.connect("t.dummy")
    mine.lock(lease=60)
    os.kill(first.pid, 9)
    first.process.wait(5)  # type: ignore[union-attr]
    second = start_daemon(order, nameserver=ns.address, port=port, spawn=True, **extra)
    try:
        time.sleep(0.5)
        info = _quiet(lambda: print(end="")) and mine.lock_info()
        outcome = _quiet(mine.set_power, 3.0)
        other = subprocess.run([sys.executable, "-c", "import sys; from pyrolab_jupyter import Lab; "
                                f"r = Lab({ns.address!r}).connect('t.dummy')\n"
                                "try:\n r.lock(lease=5); print('other process locked it')\n"
                                "except Exception as e: print(type(e).__name__)"],
                               capture_output=True, text=True, timeout=60).stdout.strip()
        print(f"lock across kill -9 + restart: lock_info after={'holder kept' if info else info}; holder's next "
              f"call: {outcome}; another process: {other}")
    finally:
        first.stop()
        second.stop()
        state.unlink(missing_ok=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fuzz(lab: Lab, handle: Any, n: int = 1000) -> None:
    rng = random.Random(9)
    remote = lab.connect("t.other", timeout=5.0)
    values: list[Any] = [None, True, -1, 0, 0.01, float("nan"), 1e308, "abc", "x" * 10_000, b"\0\1", [], {}, [1, "a"],
                         {"__pyrolab__": "ndarray"}, {"__pyrolab__": "tuple"}, {"__pyrolab__": 5}, {1: 2}]
    members = ["set_power", "echo", "choose", "dtype_of", "nope", "_private", "__class__", "describe",
               "pyrolab_lock", "pyrolab_read", "pyrolab_lock_info"]
    kinds: Counter[str] = Counter()
    documented = set(pyrolab_jupyter.errors.__all__)
    from pyrolab_jupyter.core.proxies import new_proxy
    with new_proxy(handle.uris["t.other"], 5.0) as raw:
        for _ in range(n):
            member = rng.choice(members)
            args = [rng.choice(values) for _ in range(rng.randint(0, 3))]
            try:
                if rng.random() < 0.5:
                    remote._pyrolab_call("call" if not member.startswith("pyrolab") else "control", member,
                                         tuple(args), {})
                else:
                    raw._pyroInvoke(member, args, {})
                kinds["ok"] += 1
            except Exception as err:  # noqa: BLE001
                name = type(err).__name__
                kinds["documented" if name in documented else f"raw {name}"] += 1
    raw_share = sum(v for k, v in kinds.items() if k.startswith("raw")) / n
    print(f"fuzz {n} malformed calls: {raw_share:.0%} raw builtins/Pyro5 types; {dict(kinds.most_common(8))}")


_STOCK = """
import sys
from Pyro5.api import Proxy
with Proxy(sys.argv[1]) as proxy:
    proxy._pyroSerializer = sys.argv[2]
    proxy._pyroTimeout = 5
    try:
        proxy.set_power(99)
        print("no error?")
    except Exception as err:
        print(f"{type(err).__module__}.{type(err).__name__}: {str(err)[:90]}")
"""


def stock_client(handle: Any) -> None:
    """A plain Pyro5 client in a process of its own (one that never imported this library)."""
    for serializer in ("serpent", "json"):
        out = subprocess.run([sys.executable, "-c", _STOCK, handle.uris["t.other"], serializer],
                             capture_output=True, text=True, timeout=60)
        print(f"stock {serializer} client, set_power(99): {(out.stdout or out.stderr).strip()[-200:]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=1000, help="idle sockets held (default 1000)")
    parser.add_argument("--slow", type=int, default=100, help="sockets sending a byte a second (default 100)")
    parser.add_argument("--fuzz", type=int, default=1000, help="malformed calls (default 1000)")
    parser.add_argument("--oneways", type=int, default=2000, help="one-way calls (default 2000)")
    args = parser.parse_args(argv)
    print(f"pyrolab_jupyter from {Path(pyrolab_jupyter.__file__).parent}")
    ns = start_nameserver(port=0, check_interval=1.0)
    try:
        lab = Lab(ns.address, timeout=5)
        with start_daemon(SERVICES, nameserver=ns.address, spawn=True) as handle:
            memory_attacks(handle)
            starvation(handle, idle=args.idle, slow=args.slow)
            stock_client(handle)
            fuzz(lab, handle, args.fuzz)
            oneways(handle, args.oneways)
            hung_method(handle, lab)
            time.sleep(3)
            rows = {r["name"]: r["status"] for r in lab.services()}
            print(f"listing while a method hangs: {rows}")
        silent_nameserver()
        kill_restart(ns)
    finally:
        ns.stop()


if __name__ == "__main__":
    main()
