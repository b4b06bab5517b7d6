"""The TypeScript sidebar (extension/) keeps the JupyterLab template's ESLint and Prettier rules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parent.parent / "extension"


@pytest.mark.timeout(300)
def test_the_extension_passes_eslint_and_prettier():
    jlpm = shutil.which("jlpm") or str(Path(sys.executable).parent / "jlpm")
    if not (EXTENSION / "node_modules").is_dir() or not Path(jlpm).exists():
        pytest.skip("the extension's node_modules are not installed (./dev installs them when it builds)")
    # the package.json scripts call jlpm again: it must be on PATH
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(jlpm).parent), os.environ.get("PATH", "")]))
    out = subprocess.run([jlpm, "lint:check"], cwd=EXTENSION, capture_output=True, text=True, timeout=280, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
