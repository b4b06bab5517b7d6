"""The one "did you mean" helper and the one import-by-path function, so every message reads alike."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from typing import Any

__all__ = ["close_matches", "did_you_mean", "import_path"]


def close_matches(word: str, options: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The ``n`` options closest to ``word`` (``difflib``'s ratio of at least ``cutoff``), best first."""
    return difflib.get_close_matches(word, list(options), n=n, cutoff=cutoff)


def did_you_mean(word: str, options: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` (or ``'x' or 'y'``) to append to an error message; ``""`` when nothing is close."""
    close = close_matches(word, options, n, cutoff)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def import_path(path: str) -> Any:
    """Import ``module.path:Name`` (``Name`` may be dotted, ``Outer.Inner``) and return the object.

    Raises ``ImportError`` naming what was missing (with a suggestion), also
    when the module itself raised while importing.
    """
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError:
        raise
    except Exception as err:  # the user's module raised while importing: report it, don't crash
        raise ImportError(f"importing {module_name!r} raised {type(err).__name__}: {err}") from err
    for i, part in enumerate(qualname.split(".") if qualname else ()):
        if not hasattr(obj, part):
            owner = ".".join([module_name, *qualname.split(".")[:i]])
            hint = did_you_mean(part, [n for n in dir(obj) if not n.startswith("_")])
            raise ImportError(f"{owner!r} has no attribute {part!r}{hint}")
        obj = getattr(obj, part)
    return obj
