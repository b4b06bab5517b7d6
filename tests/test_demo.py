"""``pyrolab demo --no-browser``: the simulated lab comes online, JupyterLab answers, Ctrl-C ends all."""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port, port_is_free, wait_for

from pyrolab_jupyter import Lab
from pyrolab_jupyter.demo import copy_notebooks, main, notebooks_dir

pytest.importorskip("jupyterlab")

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]

SERVICES = {"lab.laser", "lab.powermeter", "lab.stage", "lab.scope", "lab.camera"}


def _demo_command(port: int, ns_port: int, folder: Path) -> list[str]:
    args = ["--no-browser", "--port", str(port), "--nameserver-port", str(ns_port), "--notebook-dir", str(folder)]
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


def test_demo_brings_the_lab_and_jupyterlab_up_and_ctrl_c_brings_all_down(tmp_path: Path):
    port, ns_port = free_port(), free_port()
    folder = tmp_path / "work"
    started = time.monotonic()
    demo = subprocess.Popen(_demo_command(port, ns_port, folder), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        lab = Lab(f"127.0.0.1:{ns_port}", timeout=5)
        wait_for(lambda: _online(lab) == SERVICES, timeout=60)
        wait_for(lambda: _http_status(port) == 200, timeout=60)
        up = time.monotonic() - started
        # JupyterLab serves the working folder's copy of the notebooks, not pyrolab's own
        assert (folder / "quickstart.ipynb").read_bytes() == (notebooks_dir() / "quickstart.ipynb").read_bytes()
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
    url = re.search(r"the quickstart: (http://127\.0\.0\.1:\d+/lab/tree/quickstart\.ipynb\?token=\w+)", output)
    assert url, output  # the quickstart's own URL, not the Launcher's
    assert "Control-C" not in output and "jpserver-" not in output, output  # JupyterLab's misleading hints
    assert output.count("?token=") == 1, output
    assert all(_gone(pid) for pid in children), output
    assert port_is_free(port) and port_is_free(ns_port)
    print(f"demo up in {up:.1f} s")


def test_the_quickstart_url_opens_the_quickstart(tmp_path: Path):
    port, ns_port = free_port(), free_port()
    demo = subprocess.Popen(_demo_command(port, ns_port, tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _http_status(port) == 200, timeout=60)
        assert demo.stdout is not None
        line = ""
        for _ in range(200):  # bounded: the URL is among the demo's first lines
            line = demo.stdout.readline()
            if "the quickstart: " in line:
                break
        url = line.split("the quickstart: ", 1)[1].strip()
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200 and "JupyterLab" in reply.read().decode()
        token = url.rsplit("=", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/quickstart.ipynb?content=0&token={token}",
                                    timeout=10) as reply:
            assert reply.status == 200  # served from the working folder
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0


def test_copies_keep_your_edits_and_pyrolabs_own_folder_is_refused(tmp_path: Path):
    first = copy_notebooks(tmp_path)
    assert "quickstart.ipynb" in first and (tmp_path / "quickstart.ipynb").is_file()
    (tmp_path / "quickstart.ipynb").write_text("{}")  # an edit of the user's
    assert copy_notebooks(tmp_path) == []
    assert (tmp_path / "quickstart.ipynb").read_text() == "{}"
    with pytest.raises(OSError, match="choose a working folder of yours"):
        copy_notebooks(notebooks_dir())


def test_demo_refuses_a_taken_port(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert main(["--no-browser", "--port", str(taken), "--nameserver-port", str(free_port()),
                     "--notebook-dir", str(tmp_path)]) == 1
    assert f"port {taken} for JupyterLab is taken" in capsys.readouterr().err


def test_demo_opens_jupyterlab_with_the_sidebar_shown(tmp_path):
    from pyrolab_jupyter.demo import _jupyter_command, _parser

    cmd = _jupyter_command(_parser().parse_args(["--no-browser"]), tmp_path, "token")
    assert "--PyroLabServer.open_sidebar=True" in cmd  # read by the server extension, obeyed by the sidebar
