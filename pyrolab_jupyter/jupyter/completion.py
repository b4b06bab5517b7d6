"""Tab completion for ``%pyrolab``: subcommands, options, and service names from the nameserver.

Service names are fetched with a short timeout and cached for a few seconds;
a nameserver that does not answer is remembered for as long, so Tab never
holds the kernel for more than a moment.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from Pyro5.errors import PyroError

from pyrolab_jupyter.core.client import Lab, RemoteService
from pyrolab_jupyter.core.errors import PyroLabError
from pyrolab_jupyter.core.security import env_security
from pyrolab_jupyter.core.service import Service
from pyrolab_jupyter.core.settings import SETTINGS
from pyrolab_jupyter.jupyter.commands import ACTIONS, BY_KEY, GROUPS, OPTIONS, SUBCOMMANDS

__all__ = ["NameCache", "candidates", "make_matcher"]

MAGIC = "%pyrolab"


@dataclasses.dataclass
class _Entry:
    names: list[str]
    time: float
    ok: bool


class NameCache:
    """Service names per nameserver address, kept ``ttl`` seconds (failures too)."""

    def __init__(self, ttl: float = SETTINGS.completion_cache, timeout: float = SETTINGS.completion_timeout) -> None:
        self.ttl = ttl
        self.timeout = timeout
        self._entries: dict[str, _Entry] = {}
        self._mutex = threading.Lock()

    def names(self, address: str) -> list[str]:
        """The names registered at ``address``; ``[]`` when it does not answer (remembered for ``ttl``)."""
        now = time.monotonic()
        with self._mutex:
            cached = self._entries.get(address)
        if cached is not None and now - cached.time < self.ttl:
            return cached.names
        try:
            names, ok = Lab(address, timeout=self.timeout, security=env_security()).names(), True
        except (PyroLabError, PyroError, OSError):
            names, ok = [], False
        with self._mutex:
            self._entries[address] = _Entry(names, time.monotonic(), ok)
        return names

    def forget(self, address: str | None = None) -> None:
        """Drop the cache for ``address`` (all when None), e.g. after starting a daemon."""
        with self._mutex:
            if address is None:
                self._entries.clear()
            else:
                self._entries.pop(address, None)


def _service_classes(namespace: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in namespace.items()
                  if not k.startswith("_") and isinstance(v, type) and issubclass(v, Service) and v is not Service)


def _module_classes(text: str) -> list[str]:
    """``module:Cls`` completions for a module already imported (never imports anything)."""
    module_name = text.partition(":")[0]
    module = sys.modules.get(module_name)
    if module is None:
        return []
    return [f"{module_name}:{k}" for k in _service_classes(vars(module))]


def _remote_vars(namespace: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in namespace.items() if not k.startswith("_") and isinstance(v, RemoteService))


def candidates(words: list[str], current: str, names: Callable[[], list[str]], namespace: dict[str, Any],
               hosted: Callable[[], list[str]], addresses: Callable[[], list[str]]) -> list[str]:
    """Completions for the word being typed (``current``) after the subcommand words before it."""
    if not words:
        return list(SUBCOMMANDS)
    sub = words[0]
    key: tuple[str, ...] = (sub,)
    if sub in GROUPS:
        if len(words) == 1:
            return list(ACTIONS)
        key = (sub, words[1])
    if current.startswith("-"):
        return list(OPTIONS.get(key, ()))
    if words[-1] == "--on-offline":
        return ["keep", "remove"]
    if words[-1].startswith("-"):  # the value of an option: nothing to offer
        return []
    positional = [w for w in words[len(key):] if not w.startswith("-")]
    command = BY_KEY.get(key)
    kind = command.complete if command is not None else "nothing"
    if kind == "service_as" and len(positional) == 1:
        return ["as"]
    if positional and kind != "hosted":  # only the first positional is completed (daemon stop takes several)
        return []
    if kind == "classes":
        return _module_classes(current) if ":" in current else _service_classes(namespace)
    offers: dict[str, Callable[[], list[str]]] = {
        "hosted": hosted, "service_as": names, "targets": lambda: names() + _remote_vars(namespace),
        "addresses": addresses, "subcommands": lambda: list(SUBCOMMANDS),
    }
    return offers[kind]() if kind in offers else []


def make_matcher(magics: Any) -> Callable[..., Any]:
    """An IPython (API v2) matcher for lines starting with ``%pyrolab``; it silences the others there."""
    from IPython.core.completer import SimpleCompletion, completion_matcher

    @completion_matcher(api_version=2, priority=50, identifier="pyrolab")
    def pyrolab_matcher(context: Any) -> dict[str, Any]:
        line = context.text_until_cursor.lstrip()
        if not line.startswith(MAGIC + " "):
            return {"completions": [], "suppress": False}
        words = line[len(MAGIC):].split()
        if line[-1].isspace():
            words.append("")
        current, before = words[-1], words[:-1]
        found = [c for c in magics.completions(before, current) if c.startswith(current)]
        return {  # each completion replaces the whole word typed so far
            "completions": [SimpleCompletion(text=c, type="pyrolab") for c in found],
            "matched_fragment": current,
            "suppress": True,
            "ordered": True,
        }

    return cast("Callable[..., Any]", pyrolab_matcher)
