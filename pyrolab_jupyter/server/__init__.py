"""jupyter_server extension: a REST view of the lab's nameserver for the JupyterLab sidebar.

``GET /pyrolab/api/services`` answers ``{"nameserver": "host:port", "services": [...]}``
(the rows of ``Lab.services()``); ``GET /pyrolab/api/config`` says which nameserver
and whether the sidebar opens at start; ``PUT``/``POST`` there switches the nameserver.
Which one at start: ``c.PyroLabServer.nameserver``, else ``$PYROLAB_NAMESERVER``, else
127.0.0.1:9090. Enabled on install by
``jupyter-config/jupyter_server_config.d/pyrolab_jupyter.json``.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Float, Unicode
from traitlets.config import Configurable

from pyrolab_jupyter.core.errors import ConfigError
from pyrolab_jupyter.server.handlers import MANAGER_KEY, setup_handlers
from pyrolab_jupyter.server.manager import DEFAULT_TIMEOUT, LabManager

__all__ = ["LabManager", "PyroLabServer"]


class PyroLabServer(Configurable):
    """The extension's settings (``c.PyroLabServer.*`` in ``jupyter_server_config.py``)."""

    nameserver = Unicode(None, allow_none=True, config=True,
                         help="host:port of the lab's nameserver, or several comma-separated "
                              "(default: $PYROLAB_NAMESERVER, else 127.0.0.1:9090)")
    timeout = Float(DEFAULT_TIMEOUT, min=0.1, config=True, help="seconds the nameserver may take to answer")
    open_sidebar = Bool(False, config=True, help="show the PyroLab sidebar when JupyterLab starts")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "pyrolab_jupyter.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Called by jupyter_server: build the manager from the config and route the handlers."""
    settings = PyroLabServer(parent=server_app)
    try:
        manager = LabManager(settings.nameserver, timeout=settings.timeout, open_sidebar=settings.open_sidebar)
    except ConfigError as err:  # a typo in the config must not cost the user the sidebar
        server_app.log.error("c.PyroLabServer.nameserver: %s; using the default until the sidebar sets one", err)
        manager = LabManager(None, timeout=settings.timeout, open_sidebar=settings.open_sidebar)
    setup_handlers(server_app.web_app, manager)
    server_app.log.info("pyrolab_jupyter server extension: nameserver %s", manager.nameserver)


def _unload_jupyter_server_extension(server_app: Any) -> None:
    """Called by jupyter_server at shutdown: stop the manager's worker threads."""
    manager = server_app.web_app.settings.get(MANAGER_KEY)
    if manager is not None:
        manager.close()
