"""The harness itself: it skips with a reason, cuts without FIN or RST, and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys

import pytest

from multihost import netns
from multihost.netns import Network, unavailable

_LISTEN = ("import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 7999)); s.listen(); "
           "print('ready', flush=True); sys.stdin.read()")
_CONNECT = ("import socket, sys, time; t = time.monotonic()\n"
            "try:\n    socket.create_connection((sys.argv[1], 7999), timeout=2).close(); print('connected')\n"
            "except OSError as err:\n    print(type(err).__name__, round(time.monotonic() - t, 1))")


def test_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert "needs root" in (unavailable() or "")
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    assert "iproute2" in (unavailable() or "")


@pytest.mark.multihost
def test_cut_drops_silently_and_close_removes_everything() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with pytest.raises(RuntimeError, match="a test failed"):
        with Network() as net:
            a, b = net.add("a"), net.add("b")
            server = b.popen([sys.executable, "-c", _LISTEN, b.address], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            assert a.run([sys.executable, "-c", _CONNECT, b.address]).stdout.strip() == "connected"
            net.cut(b)
            # no RST, no ICMP: the connection attempt just times out, as behind a pulled cable
            assert a.run([sys.executable, "-c", _CONNECT, b.address]).stdout.startswith("TimeoutError")
            net.restore(b)
            assert a.run([sys.executable, "-c", _CONNECT, b.address]).stdout.strip() == "connected"
            names = [net.hub, a.netns, b.netns]
            raise RuntimeError("a test failed")  # teardown must still happen
    assert server.poll() is not None  # its process was stopped
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in listing for name in names)
