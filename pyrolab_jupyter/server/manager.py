"""The framework-free half of the server extension: which nameserver, and what it lists.

Handlers stay thin (dask-labextension's pattern): they ask a ``LabManager``
and map its specific errors to specific HTTP statuses. Nothing here imports
tornado or Jupyter, so the logic is testable on its own.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyrolab_jupyter.core.client import Lab
from pyrolab_jupyter.core.naming import nameserver_addresses, parse_address
from pyrolab_jupyter.core.security import env_security

__all__ = ["DEFAULT_TIMEOUT", "LabManager"]

# Seconds a nameserver may take to answer the sidebar; short, since the sidebar polls every few seconds.
DEFAULT_TIMEOUT = 3.0


def _lab_for(address: str | list[str], timeout: float) -> Lab:
    """The ``Lab`` the extension talks through: mutual TLS when ``$PYROLAB_CERT``, ``$PYROLAB_KEY`` and
    ``$PYROLAB_CA`` say so, the same settings the magics and the CLI read."""
    return Lab(address, timeout=timeout, security=env_security())


class LabManager:
    """Holds the nameserver the sidebar shows and answers its questions.

    Parameters
    ----------
    nameserver:
        ``host:port`` (or a nameserver URI); ``None`` means ``$PYROLAB_NAMESERVER``, else 127.0.0.1:9090.
    timeout:
        Seconds the nameserver may take to answer.
    open_sidebar:
        Whether JupyterLab should show the sidebar when it starts (``pyrolab demo`` asks for it).

    Pyro5 calls block, so the handlers run ``services()`` on ``executor``,
    never on the server's event loop.
    """

    def __init__(self, nameserver: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 open_sidebar: bool = False) -> None:
        self.timeout = timeout
        self.open_sidebar = open_sidebar
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pyrolab-server")
        self._lock = threading.Lock()
        self._lab = _lab_for(nameserver_addresses(nameserver), timeout)

    @property
    def nameserver(self) -> str:
        """The ``host:port`` in use (several: ``pc1:9090, pc2:9090``, their listings merged)."""
        return ", ".join(self._lab.addresses)

    def set_nameserver(self, address: str) -> str:
        """Switch to ``address`` (or a comma-separated list); ``ConfigError`` (naming the value) if one is not
        an address."""
        if not isinstance(address, str) or not address.strip():
            parse_address(address)  # says what is wrong (nameserver_addresses would take the default)
        lab = _lab_for(nameserver_addresses(address), self.timeout)
        with self._lock:
            self._lab = lab
        return ", ".join(lab.addresses)

    def services(self) -> dict[str, Any]:
        """``{"nameserver": "host:port", "services": [...]}``, the REST payload.

        Raises ``NameserverUnreachable`` or ``CallTimeout`` when the nameserver
        does not answer.
        """
        with self._lock:
            lab = self._lab
        return {"nameserver": ", ".join(lab.addresses), "services": lab.services()}

    def close(self) -> None:
        """Stop the worker threads (the server is shutting down)."""
        self.executor.shutdown(wait=False, cancel_futures=True)
