"""The notebook side: ``%pyrolab`` magics, kernel-hosted services and widget panels.

Importing this package imports nothing heavy; ``panel`` (the widget panel
builder in ``pyrolab_jupyter.jupyter.panel``) is loaded on first use, so
``from pyrolab_jupyter.jupyter import panel`` gives the function.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["panel"]


class _Package(types.ModuleType):
    """This package, with ``panel`` the function even though a submodule of that name exists.

    Importing a submodule sets it as an attribute of its package; the setter
    ignores that one case, so the public name stays the function.
    """

    @property
    def panel(self) -> Any:
        override = self.__dict__.get("_panel_override")
        if override is not None:
            return override
        from pyrolab_jupyter.jupyter.panel import panel as build

        return build

    @panel.setter
    def panel(self, value: Any) -> None:
        if not isinstance(value, types.ModuleType):  # e.g. a test's replacement
            self.__dict__["_panel_override"] = value


sys.modules[__name__].__class__ = _Package
