"""What ``pyrolab check LAB.yaml`` checks: the file, each service's class, its arguments and adapter.

Nothing is started and no instrument is constructed; each service's module is
imported (that runs the user's module code) and its constructor signature is
compared with the ``args`` of the file. Every problem is reported in one pass:
a misspelt key elsewhere in the file does not hide a bad class path.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyrolab_jupyter.adapters import adapters
from pyrolab_jupyter.core.config import LabConfig, ServiceConfig, load_lab, service_sections
from pyrolab_jupyter.core.errors import ConfigError
from pyrolab_jupyter.core.safety import rule_problems, rules_from
from pyrolab_jupyter.core.security import Security
from pyrolab_jupyter.core.service import Service, schema_of
from pyrolab_jupyter.core.suggest import close_matches, import_path
from pyrolab_jupyter.placement import placement_problems

__all__ = ["check_lab_file", "import_class", "lab_security"]


def import_class(class_path: str) -> Any:
    """Import ``module.path:Name`` and return the object (``core.suggest.import_path``)."""
    return import_path(class_path)


def _unpacked_keywords(init: Any, params: Any) -> list[str] | None:
    """The names a ``**kwargs: Unpack[SomeTypedDict]`` accepts (QCoDeS drivers use it); None if it is open."""
    var = next((p for p in params.values() if p.kind is p.VAR_KEYWORD), None)
    if var is None:
        return None
    hint = getattr(init, "__annotations__", {}).get(var.name)
    if isinstance(hint, str):  # often written for type checkers only: resolve the name by hand
        match = re.fullmatch(r"(?:\w+\.)*Unpack\[(?:\w+\.)*(\w+)\]", hint.strip())
        typed = getattr(init, "__globals__", {}).get(match.group(1)) if match else None
    elif str(typing.get_origin(hint)).rpartition(".")[2] == "Unpack":  # typing's or typing_extensions'
        typed = typing.get_args(hint)[0]
    else:
        return None
    keys = getattr(typed, "__annotations__", None)
    return list(keys) if isinstance(keys, dict) else None


def _constructor_signature(cls: type) -> inspect.Signature:
    """``cls(...)``'s signature; ``__init__``'s when a metaclass hides it behind ``(*args, **kwargs)`` (QCoDeS)."""
    sig = inspect.signature(cls)
    if all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()):
        init = inspect.signature(getattr(cls, "__init__"))  # noqa: B009
        return init.replace(parameters=list(init.parameters.values())[1:])
    return sig


def _check_args(cls: type, spec: ServiceConfig) -> list[str]:
    """Problems binding ``spec.args`` as keyword arguments of ``cls(...)``; all of them, not the first."""
    try:
        sig = _constructor_signature(cls)
    except (TypeError, ValueError) as err:
        return [f"cannot read the constructor signature of {spec.class_path} ({err})"]
    params = sig.parameters
    by_keyword = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unpacked = _unpacked_keywords(getattr(cls, "__init__", None), params)
    by_keyword += unpacked or []
    takes_any = unpacked is None and any(p.kind is p.VAR_KEYWORD for p in params.values())
    problems = []
    for name in spec.args:
        if name not in by_keyword and not takes_any:
            close = close_matches(name, by_keyword)
            hint = (f"did you mean {close[0]!r}?" if close
                    else f"it takes: {', '.join(by_keyword)}" if by_keyword else "it takes no arguments")
            problems.append(f"unknown argument {name!r} for {spec.class_path} ({hint})")
    for name, p in params.items():
        if p.default is p.empty and name not in spec.args:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                problems.append(f"missing required argument {name!r} for {spec.class_path}")
            elif p.kind is p.POSITIONAL_ONLY:
                problems.append(f"{spec.class_path} needs the positional-only argument {name!r}, "
                                "which a lab file cannot give")
    if not problems:
        try:
            sig.bind(**spec.args)
        except TypeError as err:  # anything the loop above did not foresee
            problems.append(f"arguments do not fit {spec.class_path}: {err}")
    return problems


_RULE_KEYS = {"limit": "limits", "ramp": "ramps", "interlock": "interlocks"}


def _check_rules(cls: type, spec: ServiceConfig) -> list[str]:
    """Problems of the file's ``limits``/``ramps``/``interlocks`` for ``cls``: unknown members named, with a guess."""
    try:
        rules = rules_from(spec.limits, spec.ramps, spec.interlocks)
    except ConfigError as err:
        return [str(err)]
    if not rules:
        return []
    if not issubclass(cls, Service):
        return [f"{spec.class_path} is not a Service: limits, ramps and interlocks apply to Services only"]
    try:
        schema = schema_of(cls)
    except Exception as err:  # the class's own annotations are broken: say so instead of crashing check
        return [f"cannot describe {spec.class_path} ({type(err).__name__}: {err})"]
    return rule_problems(schema, rules)


def _check_security(lab: LabConfig) -> list[str]:
    """The ``security:`` section names three files that exist and load together (else TLS would be off)."""
    if lab.security is None:
        return []
    problems = []
    for key in ("certfile", "keyfile", "cafile"):
        value = getattr(lab.security, key, None)
        if value is None:
            problems.append(f"{lab.locate(('security',))}: '{key}' is missing; TLS needs certfile, keyfile and "
                            "cafile (make them with `pyrolab certs`)")
        elif not lab.resolve(value).is_file():
            problems.append(f"{lab.locate(('security', key))}: no such file {str(lab.resolve(value))!r}")
    if not problems:
        try:
            lab_security(lab)
        except ConfigError as err:
            problems.append(f"{lab.locate(('security',))}: {err}")
    return problems


def _check_adapter(cls: type, spec: ServiceConfig) -> list[str]:
    """The named adapter exists (entry points included); a Service needs none."""
    if spec.adapter is None or issubclass(cls, Service):
        return []
    known = [name for name, _ in adapters()]
    if spec.adapter in known:
        return []
    close = close_matches(spec.adapter, known)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
    return [f"no adapter named {spec.adapter!r} ({hint})"]


def _check_service(spec: ServiceConfig, loc: tuple[Any, ...], locate: Callable[[tuple[Any, ...]], str]) -> list[str]:
    """A service's class imports and is a class, its args fit the constructor, its adapter exists, its rules fit."""
    try:
        cls = import_class(spec.class_path)
    except ImportError as err:
        return [f"{locate(loc + ('class',))}: cannot import {spec.class_path!r} ({err})"]
    if not inspect.isclass(cls):
        return [f"{locate(loc + ('class',))}: {spec.class_path!r} is {type(cls).__name__} {cls!r}, not a class"]
    where = locate(loc + ("args",) if spec.args else loc)
    problems = [f"{where}: {problem}" for problem in _check_args(cls, spec)]
    problems += [f"{locate(loc + ('adapter',))}: {problem}" for problem in _check_adapter(cls, spec)]
    for problem in _check_rules(cls, spec):  # "limit on ...", "ramp on ...": cite that key's line
        problems.append(f"{locate(loc + (_RULE_KEYS.get(problem.partition(' ')[0], 'class'),))}: {problem}")
    return problems


def lab_security(lab: LabConfig) -> Security | None:
    """The ``Security`` of a lab file's ``security:`` section (paths relative to the file); None without one."""
    sec = lab.security
    if sec is None:
        return None
    if sec.certfile is None or sec.keyfile is None or sec.cafile is None:
        raise ConfigError(f"{lab.locate(('security',))}: needs certfile, keyfile and cafile")
    return Security(lab.resolve(sec.certfile), lab.resolve(sec.keyfile), lab.resolve(sec.cafile))


def check_lab_file(path: str | Path) -> list[str]:
    """Every problem of a lab file, one readable line each; an empty list when all is well.

    Checks the file against the lab-file model and, for each service (also
    when other keys of the file are wrong), that its class imports, is a
    class, accepts the file's ``args`` by keyword (unknown names come with a
    suggestion, missing required ones are named), that a named ``adapter``
    exists and that its safety rules name members and parameters the class
    has. Also checks that the TLS files of ``security:`` exist, that some PC
    would start each part, and that no port is used twice on one PC (``placement``).
    """
    try:
        lab = load_lab(path)
    except ConfigError as err:
        problems = list(getattr(err, "problems", None) or [str(err)])
        sections, locate = service_sections(path)
        for loc, spec in sections:
            problems += _check_service(spec, loc, locate)
        return problems
    problems = _check_security(lab) + placement_problems(lab)
    for daemon_name, daemon in lab.daemons.items():
        for name, spec in daemon.services.items():
            problems += _check_service(spec, ("daemons", daemon_name, "services", name), lab.locate)
    return problems
