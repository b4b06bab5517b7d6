"""The raw Pyro5 yardstick every benchmark measures against, in a process of its own.

``raw_pyro()`` starts a plain Pyro5 daemon serving ``Raw`` (or any ``module:Class``
on the path, exposed with Pyro5's own ``expose``) and yields its URI; the
process ends with the block. ``server="multiplex"`` picks Pyro5's other server
model: that process is the benchmark's own, so setting Pyro5's process-wide
config there is fine. Imported by the ``bench_*.py`` scripts beside it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

from Pyro5.api import Proxy

__all__ = ["end_child", "raw_proxy", "raw_pyro"]

_SERVER = """
import importlib, sys, threading, time
from Pyro5 import config
from Pyro5.api import Daemon, expose
config.SERVERTYPE = sys.argv[1]

class Raw:
    def __init__(self):
        self._power = 1.0
        self.count = 0
    def set_power(self, mw):
        self._power = mw
    @property
    def power(self):
        return self._power
    def echo(self, value):
        return value
    def sleep(self, seconds):
        time.sleep(seconds)
        return seconds
    def bump(self):
        self.count += 1
        return self.count
    def ping(self):
        return 1

if sys.argv[2] == "Raw":
    served = Raw
else:
    module, _, name = sys.argv[2].partition(":")
    served = getattr(importlib.import_module(module), name)
daemon = Daemon(host="127.0.0.1", port=0)
print(daemon.register(expose(served)(), "raw"), flush=True)
threading.Thread(target=daemon.requestLoop, daemon=True).start()
sys.stdin.read()
"""


@contextlib.contextmanager
def raw_pyro(server: str = "thread", served: str = "Raw",
             python: str | os.PathLike[str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A raw Pyro5 daemon in its own process: ``(process, uri)``; stopped when the block ends.

    ``python`` runs it on another interpreter (the peer venv of ``peers.py``, which has msgpack).
    """
    proc = subprocess.Popen([str(python or sys.executable), "-c", _SERVER, server, served], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc, proc.stdout.readline().strip()
    finally:
        end_child(proc)


def end_child(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """End a server process that stops by itself when its stdin closes (every bench server here does);
    killed after ``grace`` seconds; its pipes closed."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None and not stream.closed:
            stream.close()


def raw_proxy(uri: str, timeout: float = 10.0, serializer: str = "marshal") -> Proxy:
    """Raw Pyro5's best case: a proxy made once, on the marshal serializer (or the one named)."""
    proxy = Proxy(uri)
    proxy._pyroSerializer = serializer
    proxy._pyroTimeout = timeout
    return proxy
