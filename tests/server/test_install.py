"""The install (``./dev`` installs the package as users do, with its shared data): Jupyter finds both halves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab")

ROOT = Path(__file__).resolve().parents[2]


def _jupyter(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}  # the install's own config only
    out = subprocess.run([sys.executable, "-m", "jupyter", *args], capture_output=True, text=True, timeout=120,
                         env=env)
    return re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)  # drop the colours


def test_the_prebuilt_labextension_is_enabled_ok_and_came_from_the_python_package():
    listing = _jupyter("labextension", "list")
    assert re.search(r"pyrolab-jupyter v\S+ enabled OK \(python, pyrolab-jupyter\)", listing), listing


def test_the_server_extension_is_enabled_and_loads():
    listing = _jupyter("server", "extension", "list")
    assert re.search(r"pyrolab_jupyter\.server enabled", listing), listing
    assert re.search(r"pyrolab_jupyter\.server\s+OK", listing), listing


@pytest.mark.timeout(300)
def test_the_wheel_carries_the_prebuilt_labextension_and_the_server_config(tmp_path):
    """What ``pip install pyrolab-jupyter`` unpacks: no Node needed on the user's side."""
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("pyrolab_jupyter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = next(n.split("/data/")[0] for n in names if ".data/data/" in n) + "/data/"
    labext = data + "share/jupyter/labextensions/pyrolab-jupyter/"
    for wanted in ("package.json", "install.json", "static/style.js", "schemas/pyrolab-jupyter/plugin.json"):
        assert labext + wanted in names, f"{labext + wanted} not in the wheel"
    assert data + "etc/jupyter/jupyter_server_config.d/pyrolab_jupyter.json" in names
    assert any(n.startswith(labext + "static/remoteEntry.") for n in names)
