"""The exceptions users catch.

Every class also inherits the builtin it means, so callers may catch either::

    PyroLabError(Exception)
    ├── InvalidArgument(ValueError)      a call's argument broke its annotation
    ├── ServiceLocked(PermissionError)   another client process holds the lock
    ├── LockLost(PermissionError)        your lock did not survive (lease ended, daemon restarted)
    ├── AccessDenied(PermissionError)    the caller's role or identity may not do this
    ├── InterlockError(PermissionError)  a safety rule refused the call; names the rule and the value
    ├── ServiceBusy(TimeoutError)        a non-thread-safe service stayed busy past the wait
    ├── ServiceOffline(ConnectionError)  the service's daemon cannot be reached
    ├── CallTimeout(TimeoutError)        a call, lookup or connect ran out of time
    ├── ConfigError(ValueError)          a lab file or setting is wrong
    ├── NameserverUnreachable(ConnectionError)
    ├── UnknownService(LookupError)      no such name at the nameserver
    └── RemoteError(RuntimeError)        a service raised an exception of its own type
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "CallTimeout",
    "ConfigError",
    "InterlockError",
    "InvalidArgument",
    "LockLost",
    "NameserverUnreachable",
    "PyroLabError",
    "RemoteError",
    "ServiceBusy",
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


class LockLost(PyroLabError, PermissionError):
    """The lock this process held is gone (its lease ended, or its daemon could not keep it)."""


class AccessDenied(PyroLabError, PermissionError):
    """The caller's role (certificate OU) or identity may not do this; the message says who may."""


class InterlockError(PyroLabError, PermissionError):
    """A declared safety rule refused the call; the message names the rule and the value that broke it."""


class ServiceBusy(PyroLabError, TimeoutError):
    """A service that runs one call at a time stayed busy past the caller's wait; names the call in progress."""


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
