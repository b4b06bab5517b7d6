"""What ``pyrolab check LAB.yaml`` checks: the file, each service's class, and its arguments.

Nothing is started and no instrument is constructed; each service's module is
imported (that runs the user's module code) and its constructor signature is
compared with the ``args`` of the file.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from pathlib import Path
from typing import Any

from pyrolab_jupyter.core.config import LabConfig, ServiceConfig, load_lab
from pyrolab_jupyter.core.errors import ConfigError
from pyrolab_jupyter.placement import placement_problems

__all__ = ["check_lab_file", "import_class"]


def import_class(class_path: str) -> Any:
    """Import ``module.path:Name`` (``Name`` may be dotted, ``Outer.Inner``) and return the object.

    Raises ``ImportError`` (module missing or broken, name missing) with a
    message naming what was missing.
    """
    module_name, _, qualname = class_path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError:
        raise
    except Exception as err:  # the user's module raised while importing: report it, don't crash
        raise ImportError(f"importing {module_name!r} raised {type(err).__name__}: {err}") from err
    for i, part in enumerate(qualname.split(".")):
        if not hasattr(obj, part):
            owner = ".".join([module_name, *qualname.split(".")[:i]])
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ImportError(f"{owner!r} has no attribute {part!r}{hint}")
        obj = getattr(obj, part)
    return obj


def _check_args(cls: type, spec: ServiceConfig) -> list[str]:
    """Problems binding ``spec.args`` as keyword arguments of ``cls(...)``; all of them, not the first."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError) as err:
        return [f"cannot read the constructor signature of {spec.class_path} ({err})"]
    params = sig.parameters
    by_keyword = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    problems = []
    for name in spec.args:
        if name not in by_keyword and not takes_any:
            close = difflib.get_close_matches(name, by_keyword, n=1)
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


def _check_security(lab: LabConfig) -> list[str]:
    problems = []
    if lab.security is not None:  # refuse rather than run unencrypted behind the user's back
        problems.append(f"{lab.locate(('security',))}: TLS is not available in this version of pyrolab-jupyter; "
                        "remove the section to run this lab without TLS")
    for key in ("certfile", "keyfile", "cafile"):
        value = getattr(lab.security, key, None)
        if value is not None and not lab.resolve(value).is_file():
            problems.append(f"{lab.locate(('security', key))}: no such file {str(lab.resolve(value))!r}")
    return problems


def check_lab_file(path: str | Path) -> list[str]:
    """Every problem of a lab file, one readable line each; an empty list when all is well.

    Checks the file against the lab-file model, then for each service that its
    class imports, is a class, and accepts the file's ``args`` by keyword
    (unknown names come with a suggestion, missing required ones are named).
    Also checks that the TLS files of ``security:`` exist, that some PC would
    start each part, and that no port is used twice on one PC (``placement``).
    """
    try:
        lab = load_lab(path)
    except ConfigError as err:
        return list(getattr(err, "problems", None) or [str(err)])
    problems = _check_security(lab) + placement_problems(lab)
    for daemon_name, daemon in lab.daemons.items():
        for name, spec in daemon.services.items():
            loc = ("daemons", daemon_name, "services", name)
            try:
                cls = import_class(spec.class_path)
            except ImportError as err:
                problems.append(f"{lab.locate(loc + ('class',))}: cannot import {spec.class_path!r} ({err})")
                continue
            if not inspect.isclass(cls):
                problems.append(f"{lab.locate(loc + ('class',))}: {spec.class_path!r} is "
                                f"{type(cls).__name__} {cls!r}, not a class")
                continue
            where = lab.locate(loc + ("args",) if spec.args else loc)
            problems += [f"{where}: {problem}" for problem in _check_args(cls, spec)]
    return problems
