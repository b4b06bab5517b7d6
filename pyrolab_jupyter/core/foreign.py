"""Objects that publish no description (a stock Pyro5 or PyroLab daemon's): one built from Pyro5's own metadata.

Pyro5 tells a client only member names: exposed methods, attributes and
one-way methods. The description made from them has untyped members
(``x-varargs`` methods take any positional and keyword arguments), so calls,
``help()`` and a panel with untyped inputs work; values are validated by the
object itself, not beforehand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pyrolab_jupyter.core.schema import JSON_SCHEMA_DIALECT

__all__ = ["FOREIGN_KEY", "is_foreign", "metadata_description"]

FOREIGN_KEY = "x-pyro5-metadata"  # marks a description the client built itself

_ARGS = {"type": "array", "default": [], "description": "positional arguments, as a JSON list"}


def _method(oneway: bool) -> dict[str, Any]:
    described: dict[str, Any] = {
        "description": "", "readonly": False,
        "parameters": {"type": "object", "properties": {"args": dict(_ARGS)}, "x-varargs": True},
        "returns": {},
    }
    if oneway:
        described["oneway"] = True
    return described


def metadata_description(name: str, metadata: Mapping[str, Iterable[str]], cls: str | None = None) -> dict[str, Any]:
    """A description in our format from Pyro5's ``{"methods", "attrs", "oneway"}`` metadata."""
    oneway = set(metadata.get("oneway", ()))
    methods = sorted(set(metadata.get("methods", ())) | oneway)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "class": cls,
        "name": name,
        "description": "A Pyro5 object without a pyrolab-jupyter description: members are untyped.",
        "methods": {m: _method(m in oneway) for m in methods if not m.startswith("_")},
        "properties": {a: {"description": "", "readonly": False, "schema": {}}
                       for a in sorted(metadata.get("attrs", ())) if not a.startswith("_")},
        "locked_by": None,
        FOREIGN_KEY: True,
    }


def is_foreign(description: Mapping[str, Any]) -> bool:
    """Whether the client built this description from Pyro5 metadata (no locks, no push, no validation)."""
    return bool(description.get(FOREIGN_KEY))
