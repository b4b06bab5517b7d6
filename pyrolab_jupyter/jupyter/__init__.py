"""The notebook side: ``%pyrolab`` magics, kernel-hosted services and widget panels.

Importing this package imports nothing heavy; ``panel`` (the widget panel
builder, defined in ``pyrolab_jupyter.jupyter.panels``) is loaded on first
use, so ``from pyrolab_jupyter.jupyter import panel`` gives the function.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["panel"]


def __getattr__(name: str) -> Any:
    if name == "panel":
        return importlib.import_module("pyrolab_jupyter.jupyter.panels").panel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
