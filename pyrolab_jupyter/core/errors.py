"""The exceptions users catch.

Every class also inherits the builtin it means, so callers may catch either::

    PyroLabError(Exception)
    ├── InvalidArgument(ValueError)      a call's argument broke its annotation
    ├── ServiceLocked(PermissionError)   another client process holds the lock
    ├── ServiceOffline(ConnectionError)  the service's daemon cannot be reached
    ├── CallTimeout(TimeoutError)        a call, lookup or connect ran out of time
    ├── ConfigError(ValueError)          a lab file or setting is wrong
    ├── NameserverUnreachable(ConnectionError)
    ├── UnknownService(LookupError)      no such name at the nameserver
    └── RemoteError(RuntimeError)        a service raised an exception of its own type
"""

from __future__ import annotations

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


class PyroLabError(Exception):
    """Root of every error this library raises on purpose."""


class InvalidArgument(PyroLabError, ValueError):
    """A call's argument broke the constraint its annotation declares.

    The message names the parameter, the value received and the bound,
    e.g. ``set_power: mw=99 is above the maximum 50 (mW)``.
    """


class ServiceLocked(PyroLabError, PermissionError):
    """Another client process holds the service's lock; the message names it."""


class ServiceOffline(PyroLabError, ConnectionError):
    """The service's daemon does not answer and no new address is known."""


class CallTimeout(PyroLabError, TimeoutError):
    """A call, lookup or connect ran out of its time budget."""


class ConfigError(PyroLabError, ValueError):
    """A lab file or setting is wrong; the message names file, key and expectation."""


class NameserverUnreachable(PyroLabError, ConnectionError):
    """No nameserver answers at the given address."""


class UnknownService(PyroLabError, LookupError):
    """The nameserver has no entry of that name; the message lists close names."""


class RemoteError(PyroLabError, RuntimeError):
    """A service raised an exception whose type the client cannot rebuild.

    ``remote_type`` holds its qualified type name; ``remote_traceback`` the
    daemon-side traceback text.
    """

    remote_type: str = ""
    remote_traceback: str = ""
