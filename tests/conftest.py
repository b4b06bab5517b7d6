"""Shared fixtures: real nameservers and daemons in real processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyrolab_jupyter import Lab, start_daemon

SUPPORT = Path(__file__).parent / "support"
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(SUPPORT), os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, str(SUPPORT))

_NS_CHILD = """
import sys
from pyrolab_jupyter import Security, start_nameserver
sec = Security(*sys.argv[5:8]) if len(sys.argv) > 5 else None
ns = start_nameserver(host="127.0.0.1", port=int(sys.argv[1]), check_interval=float(sys.argv[2]),
                      on_offline=sys.argv[3], storage=sys.argv[4], security=sec)
print(ns.address, flush=True)
sys.stdin.read()
ns.stop()
"""


def end_child(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """End a child process that stops by itself when its stdin closes; killed after ``grace`` seconds; its
    pipes closed."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None and not stream.closed:
            stream.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """No listener holds ``port`` (TIME_WAIT leftovers do not count, as for any server restart)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for(condition: Callable[[], object], timeout: float = 15.0, interval: float = 0.05) -> object:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception as err:  # the thing may not be up yet
            value, last = None, err
        else:
            last = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last error: {last!r})")
        time.sleep(interval)


class NameserverProcess:
    """A nameserver in its own process; ``kill()`` is ``kill -9``, ``start()`` brings it back."""

    def __init__(self, port: int, check_interval: float, on_offline: str, storage: str = "memory",
                 security: object = None) -> None:
        self.port = port
        self.args = [str(port), str(check_interval), on_offline, storage]
        if security is not None:  # a Security: the child loads the same certificate files
            self.args += [str(getattr(security, f)) for f in ("certfile", "keyfile", "cafile")]
        self.address = f"127.0.0.1:{port}"
        self.uri = f"PYRO:Pyro.NameServer@{self.address}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> NameserverProcess:
        self.proc = subprocess.Popen([sys.executable, "-c", _NS_CHILD, *self.args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line == self.address, f"nameserver child said {line!r}"
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None and not stream.closed:
                    stream.close()

    def stop(self) -> None:
        if self.proc is not None:
            end_child(self.proc)


@pytest.fixture
def nameserver_factory() -> Iterator[Callable[..., NameserverProcess]]:
    started: list[NameserverProcess] = []

    def make(check_interval: float = 0.5, on_offline: str = "keep", storage: str = "memory",
             security: object = None) -> NameserverProcess:
        ns = NameserverProcess(free_port(), check_interval, on_offline, storage, security).start()
        started.append(ns)
        return ns

    yield make
    for ns in started:
        ns.stop()


@pytest.fixture
def nameserver(nameserver_factory: Callable[..., NameserverProcess]) -> NameserverProcess:
    """A real nameserver process checking every 0.5 s."""
    return nameserver_factory()


@pytest.fixture
def daemon_factory() -> Iterator[Callable[..., object]]:
    """Start daemons in their own processes (``start_daemon(spawn=True)``); all stopped at the end."""

    handles = []

    def make(services: dict[str, object], nameserver: str, **kwargs: object) -> object:
        handle = start_daemon(services, nameserver=nameserver, spawn=True, **kwargs)
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        handle.stop()


@pytest.fixture
def python_child() -> Iterator[Callable[..., str]]:
    """Run Python code (``-c``) in a child process; returns its first stdout line. Closing its stdin stops it."""
    started: list[subprocess.Popen[str]] = []

    def run(code: str, *args: str) -> str:
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout is not None
        return proc.stdout.readline().strip()

    yield run
    for proc in started:
        end_child(proc)


@pytest.fixture
def lab(nameserver: NameserverProcess) -> Lab:
    return Lab(nameserver.address, timeout=10)


class JupyterProcess:
    """A real Jupyter server in its own process on 127.0.0.1 (a free port, a token of its own).

    ``args`` are extra command-line settings (``--PyroLabServer.nameserver=...``);
    ``request()`` speaks its REST API with the token, or with ``token=`` given.
    """

    def __init__(self, root: Path, args: tuple[str, ...] = ()) -> None:
        self.root = root
        self.port = free_port()
        self.token = os.urandom(12).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "jupyter-server.log"

    def start(self, timeout: float = 60.0) -> JupyterProcess:
        cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={self.root}",
               f"--IdentityProvider.token={self.token}", *self.args]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(self.root / ".jupyter-config"))
        env.pop("PYROLAB_NAMESERVER", None)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        proc = self.proc

        def ready() -> str | None:
            if proc.poll() is not None:
                return "exited"
            return "up" if self.request("GET", "/api/status")[0] == 200 else None

        try:
            state = wait_for(ready, timeout=timeout, interval=0.2)
        except AssertionError:
            state = "silent"
        if state != "up":
            self.stop()
            raise AssertionError(f"Jupyter server {state}:\n{self.log.read_text()}")
        return self

    def request(self, method: str, path: str, body: bytes | str | None = None,
                token: str | None = None) -> tuple[int, object]:
        """``(status, decoded JSON body)``; HTTP errors are answers here, not exceptions."""
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token if token is None else token}"})
        try:
            with urllib.request.urlopen(req, timeout=60) as reply:
                status, raw = reply.status, reply.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def jupyter_factory(tmp_path: Path) -> Iterator[Callable[..., JupyterProcess]]:
    """Start real Jupyter servers (``jupyter_factory("--Some.setting=1")``); all stopped at the end."""
    started: list[JupyterProcess] = []

    def make(*args: str) -> JupyterProcess:
        root = tmp_path / f"jupyter{len(started)}"
        root.mkdir()
        started.append(JupyterProcess(root, args).start())
        return started[-1]

    yield make
    for server in started:
        server.stop()


# --- TLS: a lab CA made by `pyrolab certs`, once per session ---------------------------------------


class LabCA:
    """A lab CA and its certificates, made by ``pyrolab certs`` in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        from pyrolab_jupyter.cli import main

        self.folder = folder
        self._main = main
        assert main(["certs", "init", str(folder)]) == 0

    @property
    def cafile(self) -> Path:
        return self.folder / "lab-ca.pem"

    def security(self, name: str, role: str = "user") -> object:
        """A ``Security`` for ``name`` with ``role``, its certificate made on first use."""
        from pyrolab_jupyter import Security

        if not (self.folder / f"{name}.pem").exists():
            assert self._main(["certs", "new", name, "--role", role, "--dir", str(self.folder)]) == 0
        return Security(self.folder / f"{name}.pem", self.folder / f"{name}.key", self.cafile)


@pytest.fixture(scope="session")
def lab_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return LabCA(tmp_path_factory.mktemp("lab-ca"))


@pytest.fixture(scope="session")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    """Another lab's CA: its certificates must be refused by ours."""
    return LabCA(tmp_path_factory.mktemp("foreign-ca"))


_TLS_NS_CHILD = """
import sys
from pyrolab_jupyter import Security, start_nameserver
sec = Security(sys.argv[2], sys.argv[3], sys.argv[4])
ns = start_nameserver(host="127.0.0.1", port=int(sys.argv[1]), check_interval=0.5, security=sec)
print(ns.address, flush=True)
sys.stdin.read()
ns.stop()
"""


class TlsLab:
    """A TLS nameserver process (cert ``tls-ns``) and a daemon process (cert ``tls-bench``) hosting t.dummy."""

    def __init__(self, lab_ca: Any) -> None:
        self.ca = lab_ca
        ns_sec = lab_ca.security("tls-ns", "daemon")
        self.address = f"127.0.0.1:{free_port()}"
        self.ns = subprocess.Popen(
            [sys.executable, "-c", _TLS_NS_CHILD, self.address.rsplit(":", 1)[1], str(ns_sec.certfile),
             str(ns_sec.keyfile), str(ns_sec.cafile)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.ns.stdout is not None and self.ns.stdout.readline().strip() == self.address
        self.daemon = start_daemon({"t.dummy": "labservices:Dummy"}, nameserver=self.address, spawn=True,
                                   security=lab_ca.security("tls-bench", "daemon"))

    def lab(self, name: str, role: str = "user") -> Lab:
        return Lab(self.address, timeout=10, security=self.ca.security(name, role))

    def stop(self) -> None:
        self.daemon.stop()
        end_child(self.ns)


@pytest.fixture
def tls_lab(lab_ca: Any) -> Iterator[TlsLab]:
    lab = TlsLab(lab_ca)
    yield lab
    lab.stop()
