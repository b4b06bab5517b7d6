"""The ``%pyrolab`` line magic (``%load_ext pyrolab_jupyter``).

::

    %pyrolab nameserver start [--port P] [--host H] [--check-interval S] [--on-offline keep|remove]
    %pyrolab nameserver stop
    %pyrolab daemon start MODULE:CLASS|NOTEBOOK_NAME [--name NAME] [--port P] [--restart] [key=value ...]
    %pyrolab daemon stop [NAME|ADDRESS ...]
    %pyrolab use [HOST:PORT]        which nameserver this kernel talks to
    %pyrolab ls                     services: status, last seen, lock holder, class, description
    %pyrolab connect NAME [as VAR]  a RemoteService (in VAR, or as the cell's result)
    %pyrolab panel NAME|VAR
    %pyrolab lock NAME|VAR [--lease S] / %pyrolab unlock NAME|VAR
    %pyrolab status                 what this kernel hosts
    %pyrolab help [SUBCOMMAND]

Settings live on the ``PyroLab`` configurable: ``%config PyroLab.nameserver =
"host:port"`` in a cell, or ``c.PyroLab.nameserver`` in the IPython profile.
Loading the extension starts nothing; mistakes get a short usage message
(``UsageError``, no traceback) with a "did you mean".
"""

from __future__ import annotations

import argparse
import html
import json
import keyword
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display
from Pyro5.errors import PyroError
from traitlets import Float, TraitError, Unicode, validate

from pyrolab_jupyter.adapters import adapt
from pyrolab_jupyter.core import naming
from pyrolab_jupyter.core.client import Lab, RemoteService, set_call_context
from pyrolab_jupyter.core.errors import ConfigError, PyroLabError
from pyrolab_jupyter.core.security import env_security
from pyrolab_jupyter.core.settings import SETTINGS
from pyrolab_jupyter.core.suggest import close_matches
from pyrolab_jupyter.core.summary import service_html, services_html, services_text, text_table
from pyrolab_jupyter.hosting import import_class
from pyrolab_jupyter.jupyter import completion
from pyrolab_jupyter.jupyter.commands import BY_KEY, COMMANDS, PARSERS, SUBCOMMANDS, UsageProblem
from pyrolab_jupyter.jupyter.kernel_hosting import KernelHosting, hosting
from pyrolab_jupyter.jupyter.parsing import choose, literal, split

__all__ = ["PyroLab", "load_ipython_extension", "show_remote", "unload_ipython_extension"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- display


def _panel_function() -> Callable[[RemoteService], Any] | None:
    """The widget panel builder, or None while ``pyrolab_jupyter.jupyter.panel`` is missing."""
    try:
        from pyrolab_jupyter.jupyter.panels import panel
    except ImportError as err:
        log.debug("no widget panel (%s); showing HTML summaries", err)
        return None
    return panel


def _show(obj: Any, raw: bool = False) -> None:
    display(obj, raw=raw)  # type: ignore[no-untyped-call]


def _summary_bundle(remote: RemoteService) -> dict[str, str]:
    try:
        page = service_html(remote._pyrolab_name, remote.describe())
    except (PyroLabError, PyroError) as err:
        page = f"<b>{html.escape(remote._pyrolab_name)}</b>: <span role=\"alert\">{html.escape(str(err))}</span>"
    return {"text/plain": repr(remote), "text/html": page}


def show_remote(remote: RemoteService) -> None:
    """Display a service: its widget panel (the open one, if shown before) when available, else an HTML summary.

    The one display path of a ``RemoteService`` in a kernel: ``%pyrolab connect``, ``%pyrolab panel``
    and a service as a cell's result (the formatter ``load_ipython_extension`` registers) all come here.
    """
    build = _panel_function()
    if build is not None:
        try:
            widget = build(remote)
        except (PyroLabError, PyroError) as err:
            log.warning("cannot build the panel of %s: %s", remote._pyrolab_name, err)
        except Exception:  # a broken panel must not hide the service: fall back to the summary
            log.exception("building the panel of %s failed", remote._pyrolab_name)
        else:
            _show(widget)
            return
    _show(_summary_bundle(remote), raw=True)


def _html_table(rows: list[list[str]], head: list[str]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


# ---------------------------------------------------------------- the magics


@magics_class
class PyroLab(Magics):
    """``%pyrolab``: host and use lab services from a notebook (``%pyrolab help``)."""

    nameserver = Unicode(
        None, allow_none=True,
        help="HOST:PORT of the nameserver this kernel talks to, or several comma-separated "
             "(default $PYROLAB_NAMESERVER, else 127.0.0.1:9090).",
    ).tag(config=True)
    timeout = Float(SETTINGS.call_timeout, help="Seconds for lookups and for calls of services connected here.").tag(config=True)
    host = Unicode("127.0.0.1", help="Interface hosted nameservers and daemons listen on.").tag(config=True)
    check_interval = Float(SETTINGS.check_interval, help="Seconds between health checks of a hosted nameserver.").tag(config=True)
    heartbeat = Float(SETTINGS.heartbeat, help="Seconds between re-registrations of hosted daemons.").tag(config=True)
    lock_lease = Float(SETTINGS.lock_lease, help="Default lease of `%pyrolab lock`, in seconds.").tag(config=True)
    completion_timeout = Float(SETTINGS.completion_timeout, help="Seconds Tab completion waits for the nameserver.").tag(config=True)
    completion_cache = Float(SETTINGS.completion_cache, help="Seconds service names (and a silent nameserver) stay cached for Tab.").tag(
        config=True)

    @validate("nameserver")
    def _valid_nameserver(self, proposal: Any) -> str | None:
        value = proposal["value"]
        if value is None or value == "":
            return None
        try:
            return ",".join(naming.nameserver_addresses(str(value)))  # one, or several: "pc1:9090,pc2:9090"
        except ConfigError as err:
            raise TraitError(str(err)) from None

    def __init__(self, shell: Any = None, hosted: KernelHosting = hosting, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.hosting = hosted
        self.names_cache = completion.NameCache(self.completion_cache, self.completion_timeout)
        self._connected: dict[tuple[str, str], RemoteService] = {}

    @property
    def address(self) -> str:
        """The ``host:port`` of the current nameserver (the first, where several are set)."""
        return naming.nameserver_address(self.nameserver)

    @property
    def addresses(self) -> str:
        """Every nameserver this kernel asks, as shown: ``pc1:9090, pc2:9090``."""
        return ", ".join(naming.nameserver_addresses(self.nameserver))

    def lab(self, timeout: float | None = None) -> Lab:
        return Lab(naming.nameserver_addresses(self.nameserver), timeout=timeout or self.timeout,
                   security=env_security())

    @line_magic
    def pyrolab(self, line: str) -> Any:
        """Host and use lab services; ``%pyrolab help`` lists the subcommands.

        ::

          %pyrolab nameserver start [--port P] | nameserver stop
          %pyrolab daemon start MODULE:CLASS|NAME [--name NAME] [key=value ...] | daemon stop [NAME]
          %pyrolab use HOST:PORT | ls | connect NAME [as VAR] | panel NAME|VAR
          %pyrolab lock NAME|VAR [--lease S] | unlock NAME|VAR | status | help [SUBCOMMAND]
        """
        try:
            key, words = split(line)
            parser, command = PARSERS[key], BY_KEY[key]
            parse = parser.parse_intermixed_args if command.intermixed else parser.parse_args
            try:
                args = parse(words)
            except argparse.ArgumentError as err:
                parser.error(str(err))
            handler: Callable[[argparse.Namespace], Any] = getattr(self, command.handler)
            return handler(args)
        except UsageProblem as err:
            raise UsageError(str(err)) from None
        except (PyroLabError, PyroError, OSError) as err:
            raise UsageError(str(err) or type(err).__name__) from None

    # hosting

    def _do_nameserver_start(self, args: argparse.Namespace) -> None:
        port = args.port if args.port is not None else naming.parse_address(self.address)[1]
        host = args.host or self.host
        current = self.hosting.nameserver
        if current is not None and current.alive:
            if args.port not in (None, 0) and not current.address.endswith(f":{args.port}"):
                print(f"this kernel already hosts a nameserver at {current.address}; stop it first "
                      f"(%pyrolab nameserver stop) to start one on port {args.port}")
            else:
                print(f"nameserver already running at {current.address} (reused)")
            self.nameserver = current.address
            return
        try:
            hosted, _ = self.hosting.start_nameserver(host, port, args.check_interval or self.check_interval,
                                                      args.on_offline, previous=self.nameserver)
        except OSError as err:
            if self._answers(f"{host}:{port}"):
                self.nameserver = f"{host}:{port}"
                print(f"a nameserver not hosted by this kernel already answers at {self.address}; using it")
                return
            raise UsageError(str(err)) from None
        self.nameserver = hosted.address
        self.names_cache.forget()
        print(f"nameserver running at {hosted.address} (in this kernel; now the current nameserver)")

    def _do_nameserver_stop(self, args: argparse.Namespace) -> None:
        hosted = self.hosting.stop_nameserver()
        if hosted is None:
            print("this kernel hosts no nameserver")
            return
        if self.nameserver == hosted.address:
            self.nameserver = hosted.previous
        self.names_cache.forget()
        print(f"nameserver at {hosted.address} stopped; port freed")

    def _resolve_class(self, spec: str) -> Any:
        if ":" in spec:
            return import_class(spec)
        namespace = self.shell.user_ns if self.shell is not None else {}
        head, *rest = spec.split(".")
        if head not in namespace:
            known = completion._service_classes(namespace)
            close = close_matches(head, known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else (
                f"; Service classes here: {', '.join(known)}" if known else "")
            raise UsageProblem(f"no {spec!r} in the notebook and no 'module:Class' given{hint}")
        obj = namespace[head]
        for part in rest:
            if not hasattr(obj, part):
                raise UsageProblem(f"{'.'.join([head, *rest[:rest.index(part)]])} has no attribute {part!r}")
            obj = getattr(obj, part)
        return obj

    def _do_daemon_start(self, args: argparse.Namespace) -> None:
        origin = self._resolve_class(args.cls)
        kwargs: dict[str, Any] = {}
        for item in args.args:
            key, sep, value = item.partition("=")
            if not sep or not key.isidentifier():
                raise UsageProblem(f"constructor argument {item!r}: expected key=value\n"
                             f"{PARSERS[('daemon', 'start')].format_usage().strip()}")
            kwargs[key] = literal(value)
        if isinstance(origin, type):  # any class: a Service is served as is, others through an adapter
            cls_name = origin.__name__
            service = None
        else:
            if kwargs:
                raise UsageProblem(f"{args.cls} is already an instance; constructor arguments make no sense")
            service, cls_name = origin, type(origin).__name__
        name = args.name or cls_name.lower()
        existing = self.hosting.find(name)
        if existing:
            old = existing[0]
            same = old.origin is origin and old.args == kwargs
            if not args.restart:
                if same and old.alive:
                    print(f"{name} already running at {old.address} (reused)")
                else:
                    print(f"this kernel already hosts {name} at {old.address} ({old.source}); "
                          f"{'the class or its arguments changed; ' if not same else ''}"
                          "add --restart to replace it")
                return
            self.hosting.stop_daemons([name])
        if service is None:
            try:
                service = origin(**kwargs)
            except TypeError as err:
                raise UsageProblem(f"cannot construct {cls_name}({', '.join(args.args)}): {err}") from None
        try:
            service = adapt(service, args.adapter)
        except ConfigError as err:
            raise UsageProblem(f"cannot serve {args.cls}: {err}") from None
        nameserver = self.address
        wait = 3.0 if self._answers(nameserver) else 0.0  # no nameserver there: do not hold the cell
        hosted = self.hosting.start_daemon(
            name, service, origin, kwargs, args.cls, nameserver, args.host or self.host, args.port,
            args.heartbeat or self.heartbeat, register_timeout=wait)
        self.names_cache.forget(nameserver)
        where = (f"registered with {nameserver}" if hosted.registered else
                 f"not registered: no nameserver answers at {nameserver} (it retries every heartbeat)")
        print(f"{name} running at {hosted.address} (in this kernel; {where})")

    def _do_daemon_stop(self, args: argparse.Namespace) -> None:
        keys = None if args.all or not args.which else list(args.which)
        unknown = [k for k in keys or () if not self.hosting.find(k)]
        if unknown:
            names = sorted(self.hosting.daemons)
            close = close_matches(unknown[0], names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else (
                f"; it hosts {', '.join(names)}" if names else "; it hosts no daemon")
            raise UsageProblem(f"this kernel hosts no daemon {unknown[0]!r}{hint}")
        stopped = self.hosting.stop_daemons(keys)
        self.names_cache.forget()
        if not stopped:
            print("this kernel hosts no daemon")
        for hosted in stopped:
            print(f"{hosted.name} at {hosted.address} stopped; port freed")

    def _do_status(self, args: argparse.Namespace) -> None:
        head = ["kind", "name", "address", "class / source", "state"]
        rows: list[list[str]] = []
        ns = self.hosting.nameserver
        if ns is not None:
            state = ("running" if ns.alive else "stopped") + (", current" if ns.address == self.address else "")
            rows.append(["nameserver", "", ns.address, "", state])
        for d in self.hosting.daemons.values():
            state = ("running" if d.alive else "stopped") + (
                f", registered with {d.nameserver}" if d.registered else f", not registered with {d.nameserver}")
            rows.append(["daemon", d.name, d.address, d.source, state])
        intro = f"current nameserver: {self.addresses}"
        if not rows:
            text = f"{intro}\nthis kernel hosts nothing"
            page = f"<p>{html.escape(intro)}</p><p>This kernel hosts nothing.</p>"
        else:
            text = f"{intro}\n{text_table(rows, head)}"
            page = f"<p>{html.escape(intro)}</p>{_html_table(rows, head)}"
        recent = list(self.hosting.log.lines)[-10:]
        if recent:
            text += "\nrecent log:\n" + "\n".join(recent)
            page += "<details><summary>recent log</summary><pre>" + html.escape("\n".join(recent)) + "</pre></details>"
        _show({"text/plain": text, "text/html": page}, raw=True)

    # using the lab

    @staticmethod
    def _answers(address: str) -> bool:
        return Lab(address, timeout=1.0, security=env_security()).answers()

    def _do_use(self, args: argparse.Namespace) -> None:
        if args.address is None:
            source = "set in this kernel" if self.nameserver else "from $PYROLAB_NAMESERVER or the default"
            print(f"current nameserver: {self.addresses} ({source})")
            return
        try:
            address = ",".join(naming.nameserver_addresses(args.address))  # several: merged, as Lab([...]) does
        except ConfigError as err:
            raise UsageProblem(f"{err}\n{PARSERS[('use',)].format_usage().strip()}") from None
        self.nameserver = address
        state = "it answers" if self._answers(address) else "no nameserver answers there yet"
        print(f"using the nameserver at {address} ({state})")

    def _do_ls(self, args: argparse.Namespace) -> None:
        rows = self.lab().services()
        if args.json:
            print(json.dumps({"nameserver": self.addresses, "services": rows}, indent=1))
            return
        text = (f"nameserver {self.addresses}\n{services_text(rows)}" if rows
                else f"the nameserver at {self.addresses} has no services registered")
        _show({"text/plain": text, "text/html": services_html(rows, self.addresses)}, raw=True)

    def _connect(self, name: str, timeout: float | None = None) -> RemoteService:
        """A connection kept by this kernel (so a lock taken through it lasts)."""
        key = (self.addresses, name)
        remote = self._connected.get(key)
        if remote is None or timeout is not None:
            remote = self.lab().connect(name, timeout=timeout)
            self._connected[key] = remote
        return remote

    def _target(self, target: str) -> RemoteService:
        """A RemoteService in the namespace named ``target``, else the service of that name."""
        value = self.shell.user_ns.get(target) if self.shell is not None else None
        if isinstance(value, RemoteService):
            return value
        return self._connect(target)

    def _do_connect(self, args: argparse.Namespace) -> RemoteService | None:
        var = None
        if args.rest:
            if len(args.rest) != 2 or args.rest[0] != "as":
                raise UsageProblem(f"expected `connect NAME as VAR`, got {' '.join([args.name, *args.rest])!r}\n"
                             f"{PARSERS[('connect',)].format_usage().strip()}")
            var = args.rest[1]
            if not var.isidentifier() or keyword.iskeyword(var):
                raise UsageProblem(f"{var!r} is not a valid Python variable name")
        remote = self._connect(args.name, args.timeout)
        if var is None:
            return remote  # the cell's result (or `x = %pyrolab connect NAME`): shown by the formatter
        assert self.shell is not None
        self.shell.user_ns[var] = remote
        show_remote(remote)
        return None

    def _do_panel(self, args: argparse.Namespace) -> None:
        show_remote(self._target(args.target))

    def _do_lock(self, args: argparse.Namespace) -> None:
        remote = self._target(args.target)
        handle = remote.lock(lease=args.lease or self.lock_lease)
        until = f" until {time.strftime('%H:%M:%S', time.localtime(handle.expires))}" if handle.expires else ""
        print(f"{remote._pyrolab_name} locked by {handle.holder}{until} (renew with the same command)")

    def _do_unlock(self, args: argparse.Namespace) -> None:
        remote = self._target(args.target)
        if remote.unlock():
            print(f"{remote._pyrolab_name} unlocked")
        else:
            print(f"this kernel held no lock on {remote._pyrolab_name}")

    def _do_help(self, args: argparse.Namespace) -> None:
        if args.topic:
            sub = choose(args.topic, SUBCOMMANDS, "subcommand", "%pyrolab help [SUBCOMMAND]")
            for key, parser in PARSERS.items():
                if key[0] == sub:
                    print(parser.format_help())
            return
        for command in COMMANDS:
            usage = PARSERS[command.key].format_usage().strip().removeprefix("usage: ")
            print(f"{usage}\n    {command.summary}")
        print("\n`%pyrolab help SUBCOMMAND` for the options of one; `%config PyroLab` for the settings.")

    # completion

    def completions(self, words: list[str], current: str) -> list[str]:
        """Candidates for the word being typed after ``%pyrolab`` and ``words``."""
        self.names_cache.ttl = self.completion_cache
        self.names_cache.timeout = self.completion_timeout
        namespace = self.shell.user_ns if self.shell is not None else {}
        ns = self.hosting.nameserver

        def addresses() -> list[str]:
            found = [self.address, naming.DEFAULT_NAMESERVER] + ([ns.address] if ns is not None else [])
            return list(dict.fromkeys(found))

        return completion.candidates(
            words, current, lambda: self.names_cache.names(self.address), namespace,
            lambda: sorted(self.hosting.daemons), addresses)


# ---------------------------------------------------------------- the extension


_LOADED: dict[int, tuple[PyroLab, Callable[..., Any], Any]] = {}


def _format_remote(remote: RemoteService) -> None:
    show_remote(remote)


def _cell_context() -> dict[str, Any] | None:
    """The notebook and execution count of the cell running now, sent with each call for the audit trail."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return None
    notebook = shell.user_ns.get("__session__") or os.environ.get("JPY_SESSION_NAME") or None
    return {"notebook": notebook, "execution_count": shell.execution_count}


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%pyrolab``, its Tab completion and the rich display of ``RemoteService``; starts nothing."""
    if id(ipython) in _LOADED:
        return
    set_call_context(_cell_context)
    magics = PyroLab(shell=ipython)
    ipython.register_magics(magics)
    matcher = completion.make_matcher(magics)
    ipython.Completer.custom_matchers.append(matcher)
    formatter = ipython.display_formatter.ipython_display_formatter
    previous = formatter.for_type(RemoteService, _format_remote)
    _LOADED[id(ipython)] = (magics, matcher, previous)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove what ``load_ipython_extension`` added; what this kernel hosts keeps running."""
    loaded = _LOADED.pop(id(ipython), None)
    if loaded is None:
        return
    magics, matcher, previous = loaded
    set_call_context(None)
    ipython.magics_manager.magics["line"].pop("pyrolab", None)
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    if matcher in ipython.Completer.custom_matchers:
        ipython.Completer.custom_matchers.remove(matcher)
    formatter = ipython.display_formatter.ipython_display_formatter
    formatter.type_printers.pop(RemoteService, None)
    if previous is not None:
        formatter.for_type(RemoteService, previous)
