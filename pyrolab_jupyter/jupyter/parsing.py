"""Reading a ``%pyrolab`` line: subcommands, options, and short usage messages with a "did you mean".

argparse is used per subcommand, made to raise ``UsageProblem`` instead of
exiting; the magic turns that into IPython's ``UsageError`` (no traceback).
"""

from __future__ import annotations

import argparse
import ast
import shlex
from typing import Any, NoReturn

from pyrolab_jupyter.core.suggest import close_matches
from pyrolab_jupyter.jupyter.completion import ACTIONS, SUBCOMMANDS

__all__ = ["PARSERS", "UsageProblem", "choose", "literal", "split"]


class UsageProblem(Exception):
    """A parse error, turned into a short ``UsageError`` by the magic."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, and suggests close option names."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        super().__init__(prog=prog, add_help=False, exit_on_error=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = ""
        if message.startswith("unrecognized arguments:"):
            options = [o for a in self._actions for o in a.option_strings]
            for word in message.split(":", 1)[1].split():
                close = close_matches(word, options, n=1, cutoff=0.5)
                if close:
                    hint = f"; did you mean {close[0]}?"
                    break
        raise UsageProblem(f"{message}{hint}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageProblem(message or self.format_usage().strip())


def _parsers() -> dict[tuple[str, ...], _Parser]:
    p: dict[tuple[str, ...], _Parser] = {}
    ns = p[("nameserver", "start")] = _Parser("%pyrolab nameserver start",
                                              description="Host a nameserver in this kernel; it becomes current.")
    ns.add_argument("--port", type=int, default=None,
                    help="port (default: the current nameserver's port; 0 picks a free one)")
    ns.add_argument("--host", default=None, help="interface to listen on (default PyroLab.host)")
    ns.add_argument("--check-interval", type=float, default=None, help="seconds between health checks")
    ns.add_argument("--on-offline", choices=("keep", "remove"), default="keep")
    p[("nameserver", "stop")] = _Parser("%pyrolab nameserver stop", description="Stop this kernel's nameserver.")
    d = p[("daemon", "start")] = _Parser(
        "%pyrolab daemon start", description="Host a service in this kernel, registered with the current nameserver.")
    d.add_argument("cls", metavar="MODULE:CLASS|NAME",
                   help="'module:Class', or a class or instance in the notebook (any class: drivers go through an adapter)")
    d.add_argument("args", metavar="key=value", nargs="*", help="constructor arguments (Python literals)")
    d.add_argument("--name", default=None, help="service name (default: the class name in lower case)")
    d.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    d.add_argument("--host", default=None, help="interface to listen on (default PyroLab.host)")
    d.add_argument("--heartbeat", type=float, default=None, help="seconds between re-registrations")
    d.add_argument("--restart", action="store_true", help="replace a service of that name hosted here")
    d.add_argument("--adapter", default=None,
                   help="adapter for a class that is not a Service (qcodes, pymeasure, pyrolab, plain, a plug-in)")
    ds = p[("daemon", "stop")] = _Parser("%pyrolab daemon stop", description="Stop daemons this kernel hosts.")
    ds.add_argument("which", metavar="NAME|ADDRESS", nargs="*", help="service names or addresses (default: all)")
    ds.add_argument("--all", action="store_true", help="every daemon hosted here")
    u = p[("use",)] = _Parser("%pyrolab use", description="Talk to the nameserver at HOST:PORT (no argument: show).")
    u.add_argument("address", metavar="HOST:PORT", nargs="?")
    ls = p[("ls",)] = _Parser("%pyrolab ls", description="The services the current nameserver knows.")
    ls.add_argument("--json", action="store_true", help="the rows as JSON text")
    c = p[("connect",)] = _Parser("%pyrolab connect", description="Connect to a service: NAME [as VAR].")
    c.add_argument("name", metavar="NAME")
    c.add_argument("rest", metavar="as VAR", nargs="*")
    c.add_argument("--timeout", type=float, default=None, help="call timeout in seconds (default PyroLab.timeout)")
    for sub, text in (("panel", "Show a service's panel."), ("unlock", "Release this kernel's lock.")):
        q = p[(sub,)] = _Parser(f"%pyrolab {sub}", description=text)
        q.add_argument("target", metavar="NAME|VAR")
    lk = p[("lock",)] = _Parser("%pyrolab lock", description="Lock a service for this kernel.")
    lk.add_argument("target", metavar="NAME|VAR")
    lk.add_argument("--lease", type=float, default=None, help="seconds (default PyroLab.lock_lease)")
    p[("status",)] = _Parser("%pyrolab status", description="What this kernel hosts and talks to.")
    h = p[("help",)] = _Parser("%pyrolab help", description="Help on a subcommand.")
    h.add_argument("topic", nargs="?")
    return p


PARSERS = _parsers()


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
    if sub in ("nameserver", "daemon"):
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
