"""``pyrolab demo``: a nameserver, a simulated lab and JupyterLab on the quickstart notebook.

The nameserver serves from this process's threads; each simulated instrument
runs in a daemon process of its own (as it would on a real lab's PCs);
JupyterLab runs as a child process whose kernels find the nameserver through
``$PYROLAB_NAMESERVER``. Ctrl-C (or SIGTERM) stops JupyterLab, the daemons and
the nameserver, in that order, and frees every port.

JupyterLab serves a working folder (``--notebook-dir``, default
``~/pyrolab-demo``) holding copies of the notebooks that come with pyrolab:
never the package's or the checkout's own files, so autosaves and
``.ipynb_checkpoints`` land in the copy. A copy already there is kept (your
edits survive); delete it to get the current one. The demo prints, and
opens, the quickstart's own URL, and drops JupyterLab's log lines that would
mislead here (its Ctrl-C hint and its Launcher URLs).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import webbrowser
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

from pyrolab_jupyter.core.client import Lab
from pyrolab_jupyter.core.errors import PyroLabError
from pyrolab_jupyter.hosting import DaemonHandle, start_daemon, start_nameserver
from pyrolab_jupyter.instruments.sim import PowerMeter

__all__ = ["DEFAULT_NOTEBOOK_DIR", "LinkedPowerMeter", "copy_notebooks", "demo_daemons", "main", "notebooks_dir"]

QUICKSTART = "quickstart.ipynb"
DEFAULT_NOTEBOOK_DIR = Path("~/pyrolab-demo")
# JupyterLab's lines that mislead under the demo: its Ctrl-C hint (Ctrl-C reaches the demo, which stops
# everything without asking) and its URLs, which open the Launcher (the demo prints the quickstart's)
_NOISE = re.compile(r"Control-C|open this file in a browser|jpserver-\d+-open\.html|copy and paste one of these URLs"
                    r"|\?token=")


class LinkedPowerMeter(PowerMeter):
    """A simulated power meter reading a laser hosted by another daemon (found by name)."""

    def __init__(self, laser_name: str = "lab.laser", nameserver: str | None = None,
                 coupling: float = 0.5, noise_mw: float = 0.01, seed: int | None = None) -> None:
        super().__init__(laser=None, coupling=coupling, noise_mw=noise_mw, seed=seed)
        self._laser_name = laser_name
        self._nameserver = nameserver

    def _true_power(self) -> float:
        if self.laser is None:  # connect on first reading: the laser's daemon may start later
            try:
                self.laser = Lab(self._nameserver, timeout=5.0).connect(self._laser_name)
            except PyroLabError:
                return 0.0  # no laser yet: no light
        return super()._true_power()


def demo_daemons(nameserver: str) -> dict[str, dict[str, Any]]:
    """The simulated lab: daemon name → its services (one daemon, one process, per instrument)."""
    sim = "pyrolab_jupyter.instruments.sim"
    return {
        "laser": {"lab.laser": {"class": f"{sim}:Laser", "description": "Tunable laser, bench 1"}},
        "powermeter": {"lab.powermeter": {
            "class": "pyrolab_jupyter.demo:LinkedPowerMeter",
            "args": {"laser_name": "lab.laser", "nameserver": nameserver},
            "description": "Power meter behind the laser's fibre, bench 1"}},
        "stage": {"lab.stage": {"class": f"{sim}:Stage", "description": "Linear stage, bench 1"}},
        "scope": {"lab.scope": {"class": f"{sim}:Scope", "description": "Two-channel oscilloscope"}},
        "camera": {"lab.camera": {"class": f"{sim}:Camera", "description": "Beam camera"}},
    }


def notebooks_dir() -> Path:
    """Where pyrolab's own notebooks are: the source tree's ``notebooks/``, else the ones installed
    with the package (``pyrolab_jupyter/notebooks``); ``OSError`` when neither is there."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "notebooks", here / "notebooks"):
        if (candidate / QUICKSTART).is_file():
            return candidate
    raise OSError(f"no {QUICKSTART} beside {here}: this installation lacks the demo notebooks")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers do not count
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyrolab demo",
        description="Run a simulated lab (nameserver + one daemon per instrument) and JupyterLab "
                    "on the quickstart notebook. Ctrl-C stops all of it.")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    parser.add_argument("--port", type=int, default=8888, help="JupyterLab's port (default 8888)")
    parser.add_argument("--nameserver-port", type=int, default=9090, help="the nameserver's port (default 9090)")
    parser.add_argument("--notebook-dir", type=Path, default=DEFAULT_NOTEBOOK_DIR,
                        help="working folder JupyterLab serves; the notebooks that come with pyrolab are copied "
                             "there unless a copy is already there (default: ~/pyrolab-demo)")
    return parser


def copy_notebooks(target: Path, source: Path | None = None) -> list[str]:
    """Copy the notebooks (and their data files) from ``source`` into ``target``; the names copied.

    A file already in ``target`` is kept, so a second demo keeps your edits.
    Refuses to serve ``source`` itself: the package's and the checkout's files stay untouched.
    """
    source = (source or notebooks_dir()).resolve()
    target = target.expanduser().resolve()
    if target == source:
        raise OSError(f"--notebook-dir {target} is where pyrolab keeps its own notebooks; "
                      "choose a working folder of yours (the demo copies the notebooks there)")
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for item in sorted(source.iterdir()):
        if item.is_file() and item.suffix in (".ipynb", ".yaml", ".yml") and not (target / item.name).exists():
            shutil.copy2(item, target / item.name)
            copied.append(item.name)
    return copied


def _jupyter_command(args: argparse.Namespace, root: Path, token: str) -> list[str]:
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",  # the demo opens the quickstart's own URL
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={args.port}", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
           f"--ServerApp.default_url=/lab/tree/{QUICKSTART}",
           "--PyroLabServer.open_sidebar=True"]  # the lab at a glance, beside the notebook
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def _relay(stream: Any) -> None:
    """Pass JupyterLab's log on to our stderr, minus the lines that mislead under the demo."""
    for line in stream:
        if not _NOISE.search(line):
            sys.stderr.write(line)
    stream.close()


def _answers(url: str) -> bool:
    import urllib.error  # noqa: PLC0415 - only the browser opener needs it
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def _open_when_ready(process: subprocess.Popen[str], api: str, url: str) -> None:
    """Open ``url`` in a browser once JupyterLab answers (it may take a few seconds to start)."""
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if _answers(api):
            webbrowser.open(url)
            return
        time.sleep(0.3)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _say(message: str) -> None:
    print(f"[pyrolab demo] {message}", file=sys.stderr, flush=True)


def _stop_jupyter(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: Jupyter shuts its kernels down and exits
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo until Ctrl-C, SIGTERM or JupyterLab exits; the exit status."""
    args = _parser().parse_args(argv)
    root = args.notebook_dir.expanduser().resolve()
    for what, port in (("JupyterLab", args.port), ("the nameserver", args.nameserver_port)):
        if port and not _port_free(port):
            _say(f"port {port} for {what} is taken; choose another with "
                 f"{'--port' if what == 'JupyterLab' else '--nameserver-port'}")
            return 1
    # both explicitly: a shell starts background jobs with SIGINT ignored, and `kill -INT` must still stop us
    previous = signal.signal(signal.SIGINT, _raise_interrupt), signal.signal(signal.SIGTERM, _raise_interrupt)
    ns = None
    daemons: list[DaemonHandle] = []
    jupyter: subprocess.Popen[str] | None = None
    try:
        copied = copy_notebooks(root)
        _say(f"notebooks in {root}" + (f" (copied {', '.join(copied)})" if copied else
                                       " (your copies kept; delete one to get the current version)"))
        ns = start_nameserver(host="127.0.0.1", port=args.nameserver_port, check_interval=2.0)
        _say(f"nameserver on {ns.address}")
        with ThreadPoolExecutor() as pool:  # the daemon processes start side by side
            futures = [pool.submit(start_daemon, services, nameserver=ns.uri, spawn=True)
                       for services in demo_daemons(ns.address).values()]
            errors = []
            for future in futures:
                try:
                    daemons.append(future.result())
                except PyroLabError as err:
                    errors.append(err)
            if errors:
                raise errors[0]
        for daemon in daemons:
            _say(f"daemon pid {daemon.pid} on {daemon.address}: {', '.join(daemon.uris)}")
        token = secrets.token_hex(16)
        env = dict(os.environ, PYROLAB_NAMESERVER=ns.address)
        # A session of its own: the terminal's Ctrl-C reaches only us, and we stop
        # JupyterLab with SIGTERM (a SIGINT would make it ask "Shutdown? (y/[n])").
        jupyter = subprocess.Popen(_jupyter_command(args, root, token), env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        threading.Thread(target=_relay, args=(jupyter.stdout,), name="jupyter-log", daemon=True).start()
        url = f"http://127.0.0.1:{args.port}/lab/tree/{QUICKSTART}?token={token}"
        _say(f"the quickstart: {url}")
        _say("Ctrl-C here stops JupyterLab, the daemons and the nameserver")
        if not args.no_browser:
            threading.Thread(target=_open_when_ready, args=(jupyter, f"http://127.0.0.1:{args.port}/api", url),
                             name="open-browser", daemon=True).start()
        while jupyter.poll() is None:
            time.sleep(0.2)
        _say(f"JupyterLab exited with status {jupyter.returncode}")
        return 0 if jupyter.returncode == 0 else 1
    except KeyboardInterrupt:
        _say("stopping")
        return 0
    except (PyroLabError, OSError) as err:
        _say(f"cannot start: {err}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        try:
            if jupyter is not None:
                _stop_jupyter(jupyter)
            for daemon in daemons:
                daemon.stop()
            if ns is not None:
                ns.stop()
        finally:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])


if __name__ == "__main__":
    sys.exit(main())
