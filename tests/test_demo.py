"""``pyrolab demo --no-browser``: the simulated lab comes online, JupyterLab answers, Ctrl-C ends all."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import free_port, port_is_free, wait_for

from pyrolab_jupyter import Lab
from pyrolab_jupyter.demo import main

pytest.importorskip("jupyterlab")

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]

SERVICES = {"lab.laser", "lab.powermeter", "lab.stage", "lab.scope", "lab.camera"}


def _demo_command(port: int, ns_port: int) -> list[str]:
    args = ["--no-browser", "--port", str(port), "--nameserver-port", str(ns_port)]
    if importlib.util.find_spec("pyrolab_jupyter.cli") is not None:
        return [sys.executable, "-m", "pyrolab_jupyter.cli", "demo", *args]
    return [sys.executable, "-c", "import sys; from pyrolab_jupyter.demo import main; sys.exit(main(sys.argv[1:]))",
            *args]


def _http_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _online(lab: Lab) -> set[str]:
    return {row["name"] for row in lab.services() if row["status"] == "online"}


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"  # a zombie has exited
    except FileNotFoundError:
        return True


def test_demo_brings_the_lab_and_jupyterlab_up_and_ctrl_c_brings_all_down():
    port, ns_port = free_port(), free_port()
    started = time.monotonic()
    demo = subprocess.Popen(_demo_command(port, ns_port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        lab = Lab(f"127.0.0.1:{ns_port}", timeout=5)
        wait_for(lambda: _online(lab) == SERVICES, timeout=60)
        wait_for(lambda: _http_status(port) == 200, timeout=60)
        up = time.monotonic() - started
        # the power meter (its own process) reads the laser (another process) through the nameserver
        laser = lab.connect("lab.laser")
        laser.set_power(10.0)
        laser.turn_on()
        assert 3.0 < lab.connect("lab.powermeter").read_many(20).mean() < 7.0
        children = _children(demo.pid)
        assert len(children) >= 6, children  # five daemons and JupyterLab
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, output
    assert "JupyterLab at http://127.0.0.1:" in output
    assert all(_gone(pid) for pid in children), output
    assert port_is_free(port) and port_is_free(ns_port)
    print(f"demo up in {up:.1f} s")


def test_demo_refuses_a_taken_port(capsys: pytest.CaptureFixture[str]):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert main(["--no-browser", "--port", str(taken), "--nameserver-port", str(free_port())]) == 1
    assert f"port {taken} for JupyterLab is taken" in capsys.readouterr().err


def test_demo_opens_jupyterlab_with_the_sidebar_shown(tmp_path):
    from pyrolab_jupyter.demo import _jupyter_command, _parser

    cmd = _jupyter_command(_parser().parse_args(["--no-browser"]), tmp_path, "token")
    assert "--PyroLabServer.open_sidebar=True" in cmd  # read by the server extension, obeyed by the sidebar
