"""The exceptions users catch (defined in ``pyrolab_jupyter.core.errors``; its docstring draws the tree)."""

from pyrolab_jupyter.core.errors import *  # noqa: F403 - this module is their public address
from pyrolab_jupyter.core.errors import __all__  # noqa: F401
