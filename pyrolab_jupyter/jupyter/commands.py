"""The ``%pyrolab`` subcommands, in one table: each row gives the parser, the handler, the completion and the help.

A subcommand is added here and nowhere else: ``parsing`` reads its words with
the row's parser, the magic calls ``_do_<key>`` (``_do_daemon_start``), Tab
completes its options (taken from the parser) and its first positional
argument (the row's ``complete`` kind), and ``%pyrolab help`` prints the row's
usage line and summary.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from pyrolab_jupyter.core.suggest import close_matches

__all__ = ["ACTIONS", "BY_KEY", "COMMANDS", "GROUPS", "OPTIONS", "PARSERS", "SUBCOMMANDS", "Command", "UsageProblem"]

Completes = Literal["classes", "hosted", "service_as", "targets", "addresses", "subcommands", "nothing"]


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


@dataclass(frozen=True)
class Command:
    """One subcommand: its words, what it does, its arguments and what Tab offers for its first positional."""

    key: tuple[str, ...]
    summary: str
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    complete: Completes = "nothing"
    intermixed: bool = False  # options and positionals may mix (``daemon start CLS --name N key=value``)

    @property
    def handler(self) -> str:
        """The magic's method that runs it."""
        return "_do_" + "_".join(self.key)

    def parser(self) -> _Parser:
        parser = _Parser("%pyrolab " + " ".join(self.key), description=self.summary)
        self.arguments(parser)
        return parser


def _nameserver_start(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=None,
                   help="port (default: the current nameserver's port; 0 picks a free one)")
    p.add_argument("--host", default=None, help="interface to listen on (default PyroLab.host)")
    p.add_argument("--check-interval", type=float, default=None, help="seconds between health checks")
    p.add_argument("--on-offline", choices=("keep", "remove"), default="keep")


def _daemon_start(p: argparse.ArgumentParser) -> None:
    p.add_argument("cls", metavar="MODULE:CLASS|NAME",
                   help="'module:Class', or a class or instance in the notebook (any class: drivers go through an adapter)")
    p.add_argument("args", metavar="key=value", nargs="*", help="constructor arguments (Python literals)")
    p.add_argument("--name", default=None, help="service name (default: the class name in lower case)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument("--host", default=None, help="interface to listen on (default PyroLab.host)")
    p.add_argument("--heartbeat", type=float, default=None, help="seconds between re-registrations")
    p.add_argument("--restart", action="store_true", help="replace a service of that name hosted here")
    p.add_argument("--adapter", default=None,
                   help="adapter for a class that is not a Service (qcodes, pymeasure, pyrolab, plain, a plug-in)")


def _daemon_stop(p: argparse.ArgumentParser) -> None:
    p.add_argument("which", metavar="NAME|ADDRESS", nargs="*", help="service names or addresses (default: all)")
    p.add_argument("--all", action="store_true", help="every daemon hosted here")


def _use(p: argparse.ArgumentParser) -> None:
    p.add_argument("address", metavar="HOST:PORT[,HOST:PORT...]", nargs="?",
                   help="the nameserver to use, or several comma-separated (their listings merged)")


def _ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="the rows as JSON text")


def _connect(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME")
    p.add_argument("rest", metavar="as VAR", nargs="*")
    p.add_argument("--timeout", type=float, default=None, help="call timeout in seconds (default PyroLab.timeout)")


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="NAME|VAR")


def _lock(p: argparse.ArgumentParser) -> None:
    _target(p)
    p.add_argument("--lease", type=float, default=None, help="seconds (default PyroLab.lock_lease)")


def _help(p: argparse.ArgumentParser) -> None:
    p.add_argument("topic", nargs="?")


COMMANDS: tuple[Command, ...] = (
    Command(("nameserver", "start"), "Host a nameserver in this kernel; it becomes current.", _nameserver_start),
    Command(("nameserver", "stop"), "Stop this kernel's nameserver."),
    Command(("daemon", "start"), "Host a service in this kernel, registered with the current nameserver.",
            _daemon_start, "classes", intermixed=True),
    Command(("daemon", "stop"), "Stop daemons this kernel hosts.", _daemon_stop, "hosted"),
    Command(("use",), "Talk to the nameserver at HOST:PORT (no argument: show).", _use, "addresses"),
    Command(("ls",), "The services the current nameserver knows.", _ls),
    Command(("connect",), "Connect to a service: NAME [as VAR].", _connect, "service_as"),
    Command(("panel",), "Show a service's panel.", _target, "targets"),
    Command(("lock",), "Lock a service for this kernel.", _lock, "targets"),
    Command(("unlock",), "Release this kernel's lock.", _target, "targets"),
    Command(("status",), "What this kernel hosts and talks to."),
    Command(("help",), "Help on a subcommand.", _help, "subcommands"),
)

BY_KEY: dict[tuple[str, ...], Command] = {c.key: c for c in COMMANDS}
PARSERS: dict[tuple[str, ...], _Parser] = {c.key: c.parser() for c in COMMANDS}
SUBCOMMANDS: tuple[str, ...] = tuple(dict.fromkeys(c.key[0] for c in COMMANDS))
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(c.key[0] for c in COMMANDS if len(c.key) > 1))  # take an action
ACTIONS: tuple[str, ...] = tuple(dict.fromkeys(c.key[1] for c in COMMANDS if len(c.key) > 1))
OPTIONS: dict[tuple[str, ...], tuple[str, ...]] = {
    key: tuple(o for a in parser._actions for o in a.option_strings if o.startswith("--"))
    for key, parser in PARSERS.items()
}
