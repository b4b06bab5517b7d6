"""A network of "PCs" on one machine: Linux network namespaces on a bridge, one per PC.

Everything lives in namespaces this module creates: a hub namespace holds the
bridge, each PC namespace holds one end of a veth pair (``eth0``, an address
in 10.77.0.0/24) whose other end is a bridge port in the hub. Nothing is added
to the machine's own namespace, so no traffic can leave these namespaces.
Cutting a PC's link sets its bridge port down: packets vanish without FIN or
RST, like a pulled cable. ``close()`` stops every process started here and
deletes every namespace (their veths and the bridge go with them).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

SUBNET = "10.77.0"
_PREFIX = "plh"  # + the pytest process id, so stale leftovers of a killed run can be recognised
_count = itertools.count()


def unavailable() -> str | None:
    """Why this machine cannot build the network (None when it can)."""
    if not sys.platform.startswith("linux"):
        return "the multi-host harness needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the multi-host harness needs root (ip netns); run the tests as root"
    if shutil.which("ip") is None:
        return "the multi-host harness needs iproute2's `ip` command"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _delete(netns: str) -> None:
    """Kill what still runs in ``netns`` (only this harness starts processes there), then delete it."""
    for pid in _ip("netns", "pids", netns, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "del", netns, check=False)


def remove_stale() -> None:
    """Delete namespaces left by a harness whose pytest process no longer exists (a killed run)."""
    listing = _ip("netns", "list", check=False).stdout.split()
    for name in listing:
        head = name.split("-", 1)[0]
        if not head.startswith(_PREFIX) or not head[len(_PREFIX):].isdigit():
            continue
        if not Path(f"/proc/{head[len(_PREFIX):]}").exists():
            _delete(name)


class PC:
    """One machine of the network: its namespace, its address, and the processes it runs."""

    def __init__(self, network: Network, name: str, address: str) -> None:
        self.network = network
        self.name = name
        self.address = address
        self.netns = f"{network.prefix}-{name}"
        self.port = f"v-{name}"  # its bridge port, in the hub namespace

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        """Start ``argv`` on this PC (``ip netns exec`` execs it: the pid is the program's own)."""
        process = subprocess.Popen(["ip", "netns", "exec", self.netns, *argv], text=True,
                                   start_new_session=True, **kwargs)
        self.network.processes.append(process)
        return process

    def run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on this PC to completion; output captured."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True, text=True,
                              timeout=timeout)

    def __repr__(self) -> str:
        return f"<PC {self.name} {self.address}>"


class Network:
    """A bridge and the PCs plugged into it; use as a context manager or call ``close()``."""

    def __init__(self) -> None:
        self.prefix = f"{_PREFIX}{os.getpid()}-{next(_count)}"
        self.hub = f"{self.prefix}-hub"
        self.pcs: dict[str, PC] = {}
        self.processes: list[subprocess.Popen[str]] = []
        self._made: list[str] = []
        try:
            self._add_netns(self.hub)
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def add(self, name: str) -> PC:
        """Plug a new PC into the bridge; it gets the next address of 10.77.0.0/24."""
        pc = PC(self, name, f"{SUBNET}.{len(self.pcs) + 1}")
        self._add_netns(pc.netns)
        _ip("-n", self.hub, "link", "add", pc.port, "type", "veth", "peer", "name", "eth0", "netns", pc.netns)
        _ip("-n", self.hub, "link", "set", pc.port, "master", "br0")
        _ip("-n", self.hub, "link", "set", pc.port, "up")
        _ip("-n", pc.netns, "addr", "add", f"{pc.address}/24", "dev", "eth0")
        _ip("-n", pc.netns, "link", "set", "eth0", "up")
        self.pcs[name] = pc
        return pc

    def cut(self, pc: PC) -> None:
        """Pull ``pc``'s cable: its packets are dropped silently, in both directions."""
        _ip("-n", self.hub, "link", "set", pc.port, "down")

    def restore(self, pc: PC) -> None:
        """Plug ``pc``'s cable back in."""
        _ip("-n", self.hub, "link", "set", pc.port, "up")

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), then delete every namespace. Safe to call twice."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        self.processes.clear()
        for name in reversed(self._made):
            _delete(name)
        self._made.clear()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
