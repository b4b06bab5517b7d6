"""The exceptions users catch (defined in ``pyrolab_jupyter.core.errors``; see its tree)."""

from pyrolab_jupyter.core.errors import (
    CallTimeout,
    ConfigError,
    InvalidArgument,
    NameserverUnreachable,
    PyroLabError,
    RemoteError,
    ServiceLocked,
    ServiceOffline,
    UnknownService,
)

__all__ = [
    "CallTimeout",
    "ConfigError",
    "InvalidArgument",
    "NameserverUnreachable",
    "PyroLabError",
    "RemoteError",
    "ServiceLocked",
    "ServiceOffline",
    "UnknownService",
]
