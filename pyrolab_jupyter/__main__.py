"""``python -m pyrolab_jupyter``: the ``pyrolab`` command, reachable whoever owns the ``pyrolab`` script."""

from __future__ import annotations

import sys

from pyrolab_jupyter.cli import main

if __name__ == "__main__":
    sys.exit(main())
