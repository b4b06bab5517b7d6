"""pyrolab-jupyter: run a physics or optics lab over the network, from Jupyter.

Importing this package starts nothing, touches no network, changes no Pyro5
configuration and imports no Jupyter module; the notebook side is reached
through ``%load_ext pyrolab_jupyter`` or ``pyrolab_jupyter.jupyter``.
"""

from __future__ import annotations

from typing import Any

from pyrolab_jupyter import errors
from pyrolab_jupyter.core.client import Lab, RemoteService
from pyrolab_jupyter.core.safety import Interlock, Ramp, Requirement
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.service import Range, Service, Unit, expose
from pyrolab_jupyter.hosting import start_daemon, start_nameserver

__all__ = [
    "Interlock",
    "Lab",
    "Ramp",
    "Range",
    "RemoteService",
    "Requirement",
    "Security",
    "Service",
    "Unit",
    "errors",
    "expose",
    "load_ipython_extension",
    "start_daemon",
    "start_nameserver",
    "unload_ipython_extension",
]

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext pyrolab_jupyter``: register the ``%pyrolab`` magics."""
    from pyrolab_jupyter.jupyter import magics  # the Jupyter side is imported only here

    magics.load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from pyrolab_jupyter.jupyter import magics

    magics.unload_ipython_extension(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab sidebar is (for ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "pyrolab-jupyter"}]

