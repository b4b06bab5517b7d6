"""Living beside PyPI's PyroLab: both install a ``pyrolab`` command, and pip gives it to the last one installed.

pip overwrites a console script without a word, so pyrolab-jupyter also
installs ``pyrolab-jupyter`` (and answers ``python -m pyrolab_jupyter``), which
always reach it, and ``pyrolab --version`` / ``pyrolab-jupyter --version`` say
which package the ``pyrolab`` command of this environment belongs to.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

__all__ = ["help_note", "pyrolab_command_owner", "version_report"]

_OURS = "pyrolab_jupyter.cli"
_PYROLAB = "pyrolab.cli"


def _script(name: str) -> Path | None:
    beside = Path(sys.executable).with_name(name)  # the environment's own scripts win over PATH
    if beside.is_file():
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


def pyrolab_command_owner() -> str | None:
    """``"pyrolab-jupyter"``, ``"PyroLab"``, ``"other"`` or None (no ``pyrolab`` command here)."""
    script = _script("pyrolab")
    if script is None:
        return None
    try:
        text = script.read_bytes()[:4096].decode("utf-8", "replace")
    except OSError:
        return "other"
    if f"from {_OURS} import" in text or f"{_OURS}:" in text:
        return "pyrolab-jupyter"
    if f"from {_PYROLAB} import" in text or f"{_PYROLAB}:" in text:
        return "PyroLab"
    return "other"


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def version_report() -> str:
    """Our version, and whose ``pyrolab`` command this environment has, with how to reach the other one."""
    ours = _installed("pyrolab-jupyter") or "unknown"
    lines = [f"pyrolab-jupyter {ours} (always reachable as `pyrolab-jupyter` or `python -m pyrolab_jupyter`)"]
    pyrolab = _installed("pyrolab")
    owner = pyrolab_command_owner()
    if pyrolab is not None:
        lines.append(f"PyroLab {pyrolab} is installed too; the `pyrolab` command here runs "
                     f"{'PyroLab' if owner == 'PyroLab' else 'pyrolab-jupyter' if owner == 'pyrolab-jupyter' else owner}")
        if owner == "PyroLab":
            lines.append("  to give `pyrolab` back to pyrolab-jupyter: pip install --force-reinstall --no-deps "
                         "pyrolab-jupyter")
        else:
            lines.append("  to give `pyrolab` to PyroLab: pip install --force-reinstall --no-deps pyrolab")
    return "\n".join(lines)


def help_note() -> str:
    """A line for ``--help`` when PyroLab owns the ``pyrolab`` command here, else nothing."""
    if pyrolab_command_owner() != "PyroLab":
        return ""
    return ("\n\nNote: `pyrolab` in this environment runs PyroLab's command (installed after pyrolab-jupyter); "
            "this one is `pyrolab-jupyter` (see `pyrolab-jupyter --version`).")
