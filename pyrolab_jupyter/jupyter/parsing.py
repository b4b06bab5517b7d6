"""Reading a ``%pyrolab`` line: subcommands, options, and short usage messages with a "did you mean".

Each subcommand's argparse parser comes from the table in ``commands``, made
to raise ``UsageProblem`` instead of exiting; the magic turns that into
IPython's ``UsageError`` (no traceback).
"""

from __future__ import annotations

import ast
import shlex
from typing import Any

from pyrolab_jupyter.core.suggest import close_matches
from pyrolab_jupyter.jupyter.commands import ACTIONS, GROUPS, PARSERS, SUBCOMMANDS, UsageProblem

__all__ = ["PARSERS", "UsageProblem", "choose", "literal", "split"]


def choose(word: str, choices: tuple[str, ...], what: str, usage: str) -> str:
    if word in choices:
        return word
    close = close_matches(word, choices, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageProblem(f"unknown {what} {word!r}{hint}\nusage: {usage}")


def split(line: str) -> tuple[tuple[str, ...], list[str]]:
    """``(subcommand key, remaining words)``; raises ``_Usage`` on unknown words."""
    try:
        words = shlex.split(line)
    except ValueError as err:
        raise UsageProblem(f"cannot read the line: {err}") from None
    if not words:
        return ("help",), []
    top = "%pyrolab {" + ",".join(SUBCOMMANDS) + "} ..."
    sub = choose(words[0], SUBCOMMANDS, "subcommand", top)
    if sub in GROUPS:
        usage = f"%pyrolab {sub} {{start,stop}} ..."
        if len(words) < 2:
            raise UsageProblem(f"{sub} needs an action\nusage: {usage}")
        return (sub, choose(words[1], ACTIONS, f"{sub} action", usage)), words[2:]
    return (sub,), words[1:]


def literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
