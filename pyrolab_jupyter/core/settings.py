"""Every default in one place, like Pyro5's ``configure.py``: the lab file, the CLI, the magics and ``start_*`` read it.

A default changes here and nowhere else: the lab-file models' field defaults,
``pyrolab``'s option defaults, the ``%pyrolab`` traitlets and the
``start_nameserver``/``start_daemon`` keyword defaults all name a field of
``SETTINGS``. Importing this module reads nothing and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SETTINGS", "Settings"]


@dataclass(frozen=True)
class Settings:
    """The defaults; times in seconds, sizes in MiB."""

    nameserver_port: int = 9090  # where a nameserver listens unless told otherwise
    heartbeat: float = 5.0  # a daemon re-registers (and its entry is refreshed) this often
    check_interval: float = 5.0  # the nameserver checks every daemon this often
    register_timeout: float = 5.0  # start_daemon waits this long for its first registration
    call_timeout: float = 10.0  # a client's lookups and calls
    lock_lease: float = 60.0  # a lock without a lease given lasts this long unless renewed
    max_message_mb: float = 128.0  # the largest message a server accepts
    stop_timeout: float = 10.0  # `pyrolab up` waits this long for a child to stop before it kills it
    ls_timeout: float = 5.0  # `pyrolab ls` waits this long for the nameserver
    completion_timeout: float = 0.5  # Tab completion waits this long for the nameserver
    completion_cache: float = 5.0  # Tab completion keeps service names this long

    @property
    def max_message(self) -> int:
        """``max_message_mb`` in bytes."""
        return int(self.max_message_mb * 1024 * 1024)


SETTINGS = Settings()
