"""The install (``./dev`` installs the package as users do, with its shared data): Jupyter finds both halves."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("jupyterlab")


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
