"""pyrolab-jupyter beside PyPI's PyroLab 0.5: each command stays reachable, and which owns `pyrolab` is said."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyrolab_jupyter import coexist

BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"})


def test_pyrolab_jupyter_command_and_module_are_always_ours():
    for argv in ([str(BIN / "pyrolab-jupyter"), "--help"], [sys.executable, "-m", "pyrolab_jupyter", "--help"]):
        done = _run(*argv)
        assert done.returncode == 0, done.stderr
        assert "Run a lab's nameserver and daemons" in done.stdout


def test_with_both_installed_each_cli_is_reachable():
    pytest.importorskip("pyrolab")
    import importlib.metadata

    scripts = importlib.metadata.distribution("pyrolab").entry_points.select(group="console_scripts")
    assert [e.value for e in scripts if e.name == "pyrolab"] == ["pyrolab.cli:run"]
    theirs = _run(sys.executable, "-c", "import sys; from pyrolab.cli import run; sys.argv = ['pyrolab', '--help']; run()")
    assert theirs.returncode == 0, theirs.stderr
    assert "Run a lab's nameserver and daemons" not in theirs.stdout and "Usage" in theirs.stdout
    owner = coexist.pyrolab_command_owner()
    assert owner in ("pyrolab-jupyter", "PyroLab")
    shared = _run(str(BIN / "pyrolab"), "--help")
    assert shared.returncode == 0
    assert ("Run a lab's nameserver and daemons" in shared.stdout) == (owner == "pyrolab-jupyter")
    report = _run(str(BIN / "pyrolab-jupyter"), "--version").stdout
    assert f"the `pyrolab` command here runs {owner}" in report
    assert "pip install --force-reinstall --no-deps" in report


@pytest.mark.parametrize(("body", "owner"), [
    ("import sys\nfrom pyrolab.cli import run\nsys.exit(run())\n", "PyroLab"),
    ("import sys\nfrom pyrolab_jupyter.cli import main\nsys.exit(main())\n", "pyrolab-jupyter"),
    ("echo something else\n", "other"),
])
def test_the_owner_is_read_from_the_installed_script(tmp_path, monkeypatch, body, owner):
    (tmp_path / "pyrolab").write_text(f"#!{sys.executable}\n{body}")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert coexist.pyrolab_command_owner() == owner
    assert ("runs PyroLab's command" in coexist.help_note()) == (owner == "PyroLab")
