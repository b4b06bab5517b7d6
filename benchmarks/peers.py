"""The peers that cannot share our venv, PyroLab 0.5 and raw Pyro5 on msgpack, in a venv of their own.

PyroLab 0.5 ships a ``pyrolab`` command, as we do, so the benchmarks install it
(with numpy, msgpack and the Pyro5 version we run on) into a venv made once with
``python -m venv`` and pip and cached under ``$PYROLAB_BENCH_CACHE``, else
``$XDG_CACHE_HOME/pyrolab-jupyter-bench`` (``~/.cache/...``). Its servers and its
clients run as processes of that venv's python: ``PeerClient`` drives a proxy
there, times whole batches of calls inside that process and reports the seconds
as JSON lines, so ``bench_calls._rotated`` interleaves them with our own
contenders. PyroLab writes its configuration under ``~``, so its processes get a
temporary HOME. When the venv cannot be made (no network, say), ``peer_python``
says why and the benchmarks print ``PyroLab 0.5: skipped (<reason>)`` and go on.
Imported by the ``bench_*.py`` scripts beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import Pyro5
from rawpyro import end_child

__all__ = ["PeerClient", "peer_home", "peer_python", "peer_server", "skipped"]

PYROLAB = "pyrolab>=0.5,<0.6"


def requirements() -> list[str]:
    """What the peer venv holds: PyroLab 0.5, numpy, msgpack and our own Pyro5 version (like for like)."""
    return [PYROLAB, "numpy", "msgpack", f"Pyro5=={Pyro5.__version__}"]


def cache_dir() -> Path:
    """Where the peer venv is kept between runs."""
    if os.environ.get("PYROLAB_BENCH_CACHE"):
        return Path(os.environ["PYROLAB_BENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pyrolab-jupyter-bench"


def peer_python(timeout: float = 600.0) -> tuple[Path | None, str]:
    """``(python of the peer venv, "")``, made on first use; ``(None, reason)`` when it cannot be made."""
    where = cache_dir()
    venv = where / f"pyrolab05-py{sys.version_info[0]}.{sys.version_info[1]}"
    python = venv / "bin" / "python"
    stamp = venv / ".ready"
    want = "\n".join(requirements())
    try:
        where.mkdir(parents=True, exist_ok=True)
        with open(where / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two benchmarks (or test workers) build it once
            if stamp.exists() and stamp.read_text() == want and not _broken(python):
                return python, ""
            print(f"peers: installing {', '.join(requirements())} into {venv} (once)", flush=True)
            shutil.rmtree(venv, ignore_errors=True)
            steps = [[sys.executable, "-m", "venv", str(venv)],
                     [str(python), "-m", "pip", "install", "--quiet", "--retries", "1", *requirements()]]
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, timeout=timeout)
                if done.returncode:
                    last = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()
                    return None, f"{Path(step[0]).name} {step[2]} failed: {last[-1]}"
            problem = _broken(python)
            if problem:
                return None, f"the new venv at {venv} does not work: {problem}"
            stamp.write_text(want)
            return python, ""
    except subprocess.TimeoutExpired as exc:
        return None, f"installing took over {exc.timeout:.0f} s"
    except OSError as exc:
        return None, f"cannot make a venv under {where}: {exc}"


def _broken(python: Path) -> str:
    """"" when the peer venv's python imports what the benchmarks run there, else what went wrong."""
    if not python.exists():
        return f"{python} is missing"
    with peer_home() as env:
        try:
            done = subprocess.run([str(python), "-c", "import msgpack, numpy, Pyro5.api, pyrolab.api"],
                                  capture_output=True, text=True, timeout=120, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
    lines = done.stderr.strip().splitlines()
    return (lines[-1] if lines else f"exit {done.returncode}") if done.returncode else ""


def skipped(reason: str) -> str:
    """The line a benchmark prints instead of the PyroLab 0.5 figures."""
    return f"PyroLab 0.5: skipped ({reason})"


@contextlib.contextmanager
def peer_home() -> Iterator[dict[str, str]]:
    """An environment with a temporary HOME (PyroLab writes its configuration under ~); removed afterwards."""
    home = tempfile.mkdtemp(prefix="pyrolab05-")
    try:
        yield {**os.environ, "HOME": home, "USERPROFILE": home, "XDG_CONFIG_HOME": home,
               "XDG_DATA_HOME": home, "XDG_STATE_HOME": home, "XDG_CACHE_HOME": home}
    finally:
        shutil.rmtree(home, ignore_errors=True)


_PYROLAB_SERVER = """
import sys, threading
from pyrolab.api import Daemon, Service, expose
frames = {}
@expose
class Bench(Service):
    def __init__(self):
        self._power = 1.0
    def set_power(self, mw):
        self._power = mw
    @property
    def power(self):
        return self._power
    def frame(self, nbytes):
        # PyroLab 0.5 (Pyro5 + serpent) cannot send an ndarray: a frame is a list of floats
        if nbytes not in frames:
            frames[nbytes] = [0.5] * (nbytes // 8)
        return frames[nbytes]
    def sink(self, data):
        return 8 * len(data)
daemon = Daemon(host="127.0.0.1", port=0)
print(daemon.register(Bench, "bench"), flush=True)
threading.Thread(target=daemon.requestLoop, daemon=True).start()
sys.stdin.read()
daemon.shutdown()
"""


@contextlib.contextmanager
def peer_server(python: Path, env: dict[str, str]) -> Iterator[str]:
    """A PyroLab 0.5 daemon serving ``Bench`` in the peer venv's python; yields its URI, stopped with the block."""
    proc = subprocess.Popen([str(python), "-c", _PYROLAB_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout is not None
        uri = proc.stdout.readline().strip()
        if not uri:
            raise RuntimeError("the PyroLab 0.5 daemon did not start (its error is above)")
        yield uri
    finally:
        end_child(proc)


_DRIVER = """
import json, random, sys, time
from Pyro5.api import Proxy  # pyrolab.api.Proxy is this very class
proxies, values = {}, {}
def value(v):
    if isinstance(v, dict) and "floats" in v:  # a list of random floats, made once
        if v["floats"] not in values:
            rng = random.Random(1)
            values[v["floats"]] = [rng.random() for _ in range(v["floats"])]
        return values[v["floats"]]
    return v
for line in sys.stdin:
    req = json.loads(line)
    try:
        key = (req["uri"], req["serializer"])
        proxy = proxies.get(key)
        if proxy is None:
            proxy = proxies[key] = Proxy(req["uri"])
            proxy._pyroSerializer = req["serializer"]
            proxy._pyroTimeout = req["timeout"]
            proxy._pyroBind()
        args = [value(a) for a in req["args"]]
        if req["op"] == "get":  # what proxy.NAME does for a remote property
            fn = lambda: proxy._pyroInvoke("__getattr__", (req["name"],), {})
        else:
            method = getattr(proxy, req["name"])
            fn = lambda: method(*args)
        n = req["n"]
        start = time.perf_counter()
        for _ in range(n):
            fn()
        reply = {"seconds": (time.perf_counter() - start) / max(n, 1)}
    except Exception as exc:
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(reply), flush=True)
"""


class PeerClient:
    """A Pyro5 client in the peer venv's python, timing batches of one call there (start it where it is pinned)."""

    def __init__(self, python: Path, env: dict[str, str], timeout: float = 120.0) -> None:
        self.timeout = timeout
        self.proc = subprocess.Popen([str(python), "-c", _DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)

    def run(self, uri: str, serializer: str, op: str, name: str, args: list[Any], n: int) -> float:
        """Seconds per call of ``n`` calls timed in the peer process; RuntimeError with its error if one failed."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"uri": uri, "serializer": serializer, "op": op, "name": name,
                                          "args": args, "n": n, "timeout": self.timeout}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the peer client ended (its error is above)")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return float(reply["seconds"])

    def contender(self, uri: str, serializer: str, op: str, name: str, *args: Any) -> _Batched:
        """A contender for ``bench_calls._rotated``: one call, connected now (so no batch pays the connect)."""
        batched = _Batched(self, uri, serializer, op, name, list(args))
        batched.batch(1)
        return batched

    def close(self) -> None:
        end_child(self.proc)

    def __enter__(self) -> PeerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Batched:
    """One call in the peer process; ``batch(n)`` times n of them there (``_rotated`` prefers it)."""

    def __init__(self, client: PeerClient, uri: str, serializer: str, op: str, name: str, args: list[Any]) -> None:
        self.client, self.uri, self.serializer, self.op, self.name, self.args = \
            client, uri, serializer, op, name, args

    def batch(self, n: int) -> float:
        return self.client.run(self.uri, self.serializer, self.op, self.name, self.args, n)

    def __call__(self) -> float:
        return self.batch(1)


