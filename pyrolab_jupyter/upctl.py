"""Steering a running ``pyrolab up``: ``--detach``, ``ps``, ``logs``, ``reload`` and ``down``.

``cli`` parses the options; the functions here find this PC's running ``up``
of a lab file through its state files in the logs folder (``control``) and
talk to it over its control socket. ``prepare`` is shared by ``up`` and a
reload, so both place a lab file on this PC the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrolab_jupyter import control, placement, supervisor
from pyrolab_jupyter.core.config import LabConfig, load_lab
from pyrolab_jupyter.core.errors import ConfigError
from pyrolab_jupyter.core.suggest import did_you_mean
from pyrolab_jupyter.core.timefmt import duration
from pyrolab_jupyter.labcheck import check_lab_file

__all__ = ["Prepared", "cmd_down", "cmd_logs", "cmd_ps", "cmd_reload", "control_handler", "detach", "fail",
           "load_checked", "prepare"]


def fail(message: str, code: int = 1) -> int:
    print(f"pyrolab: {message}", file=sys.stderr)
    return code


def load_checked(path: str) -> LabConfig | None:
    problems = check_lab_file(path)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"pyrolab: {path}: {len(problems)} problem{'s' * (len(problems) != 1)}", file=sys.stderr)
        return None
    return load_lab(path)


@dataclass
class Prepared:
    """This PC's share of a lab file, ready to supervise."""

    lab: LabConfig
    children: list[supervisor.ChildSpec]
    logs: Path
    own_log: str
    own_ns: bool
    notes: list[str]


def prepare(path: str, as_parts: Sequence[str], logs_override: str | None) -> Prepared | tuple[str, int]:
    """Load ``path`` (already checked) and place it on this PC; (message, exit code) when nothing here can run."""
    lab = load_lab(path)
    try:
        placed = placement.place(lab, as_parts)
    except ConfigError as err:
        return str(err), 2
    if not placed.mine and placed.others:
        where = ", ".join(f"{name} on {host or 'no host'}" for name, host in placed.others.items())
        return (f"{path}: no part of this lab runs on this PC (its parts: {where}); "
                "run `pyrolab up` on those PCs, or start a part here with --as NAME"), 1
    notes = placement.relocate(lab, placed) + ([placed.summary()] if placed.others else [])
    logs = supervisor.logs_folder(lab, logs_override)
    children = supervisor.lab_children(lab, parts=placed.mine, state_dir=logs)
    if not children:
        return f"{path}: nothing to run (an external nameserver and no daemons)", 1
    return Prepared(lab, children, logs, "up" if not placed.others else "up-" + "+".join(placed.mine),
                     placement.NAMESERVER_PART in placed.mine, notes)


def _up_argv(args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "pyrolab_jupyter.cli", "up", str(Path(args.lab).resolve())]
    for part in args.as_parts or ():
        argv += ["--as", part]
    if args.logs:
        argv += ["--logs", str(Path(args.logs).resolve())]
    return argv + ["--no-console"]  # the log files have every line; a console file would grow without bound


def control_handler(sup: supervisor.Supervisor, request: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Answer one control request (``ps``, ``reload``, ``down``) sent by another ``pyrolab`` command."""
    op = request.get("op")
    if op == "ps":
        return sup.call(sup.status)
    if op == "down":
        sup.request_stop()
        return {"stopping": os.getpid()}
    if op == "reload":
        problems = check_lab_file(args.lab)
        if problems:
            return {"error": f"{args.lab}: {len(problems)} problem(s); nothing was changed", "problems": problems}
        prepared = prepare(args.lab, args.as_parts or (), args.logs)
        if isinstance(prepared, tuple):
            return {"error": prepared[0] + "; nothing was changed"}
        return sup.call(lambda: sup.apply(prepared.children))
    return {"error": f"unknown control request {op!r}; known: ps, reload, down"}


def detach(args: argparse.Namespace, prepared: Prepared) -> int:
    """Start ``up`` in the background (its own session, output in the logs folder); wait until it answers."""
    prepared.logs.mkdir(parents=True, exist_ok=True)
    out_path = prepared.logs / f"{prepared.own_log}.out"
    with open(out_path, "ab") as out:
        process = subprocess.Popen(_up_argv(args), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=prepared.lab.base_dir)
    state_file = prepared.logs / f"{prepared.own_log}.json"
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = out_path.read_text(encoding="utf-8", errors="replace").splitlines()[-10:]
            return fail(f"the background supervisor exited at once (code {process.returncode}):\n" +
                         "\n".join(tail))
        states = [s for s in control.running_ups(prepared.logs) if s.pid == process.pid]
        if states and state_file.exists():
            print(f"pyrolab up: running in the background (pid {process.pid}); logs in {prepared.logs}\n"
                  f"  pyrolab ps {args.lab}    pyrolab logs {args.lab} NAME    pyrolab down {args.lab}")
            return 0
        time.sleep(0.1)
    return fail(f"the background supervisor (pid {process.pid}) did not report within 60 s; "
                 f"see {out_path}")


# --- ps / logs / reload / down: talk to running ups --------------------------------------------


def _ups(args: argparse.Namespace) -> tuple[Path, list[control.UpState]] | int:
    """The logs folder of ``args.lab`` and the ``up`` processes of it that run on this PC."""
    try:
        lab = load_lab(args.lab)
    except (ConfigError, OSError) as err:
        if getattr(args, "logs", None) is None:
            return fail(f"{err}\n(give --logs DIR to reach its running `up` anyway)")
        logs = Path(args.logs).expanduser().resolve()
    else:
        logs = supervisor.logs_folder(lab, getattr(args, "logs", None))
    return logs, [s for s in control.running_ups(logs) if s.here]


def _ask_all(args: argparse.Namespace, request: dict[str, Any]) -> list[tuple[control.UpState, dict[str, Any]]]:
    if not control.AVAILABLE:
        raise SystemExit(fail(f"`pyrolab {args.command}` talks to `up` over a Unix socket, which this Python lacks; "
                               "stop or restart the service that runs `pyrolab up` instead", 2))
    found = _ups(args)
    if isinstance(found, int):
        raise SystemExit(found)
    logs, states = found
    answers = []
    for state in states:
        try:
            answers.append((state, control.ask(state, request)))
        except (OSError, ValueError):
            print(f"pyrolab: {state.state_file}: its supervisor (pid {state.pid}) does not answer; "
                  "it was killed — removing the stale state file", file=sys.stderr)
            state.state_file.unlink(missing_ok=True)
    if not answers:
        raise SystemExit(fail(f"{args.lab}: no `pyrolab up` of it runs on this PC (no live state file in "
                               f"{logs}); start one with `pyrolab up {args.lab} --detach`"))
    return answers


def cmd_ps(args: argparse.Namespace) -> int:
    replies = _ask_all(args, {"op": "ps"})
    rows = [row for _, answer in replies for row in answer.get("processes", [])]
    if args.json:
        print(json.dumps({"supervisors": [a.get("pid") for _, a in replies], "processes": rows}))
        return 0
    header = ("NAME", "PID", "STATE", "RESTARTS", "UPTIME", "PORT")
    table = [header] + [(r["name"], str(r["pid"] or "-"), r["state"], str(r["restarts"]),
                         duration(r["uptime"]) if r["uptime"] is not None else "-",
                         str(r["port"] or "-")) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    if load_checked(args.lab) is None:  # refused here: nothing running is touched
        print(f"pyrolab: {args.lab}: not reloaded; the running lab is unchanged", file=sys.stderr)
        return 1
    code = 0
    for state, answer in _ask_all(args, {"op": "reload"}):
        if "error" in answer:
            for problem in answer.get("problems", []):
                print(problem, file=sys.stderr)
            code = fail(f"{state.state_file.name}: {answer['error']}")
            continue
        said = [f"{key} {', '.join(answer[key])}" for key in ("restarted", "started", "stopped", "unchanged")
                if answer.get(key)]
        print(f"reloaded {args.lab} ({state.state_file.stem}): {'; '.join(said) or 'nothing to do'}")
    return code


def cmd_down(args: argparse.Namespace) -> int:
    replies = _ask_all(args, {"op": "down"})
    deadline = time.monotonic() + args.timeout
    left = [state for state, _ in replies]
    while left and time.monotonic() < deadline:
        left = [s for s in left if s.state_file.exists()]
        time.sleep(0.1)
    for state in left:
        print(f"pyrolab: the supervisor pid {state.pid} is still stopping after {args.timeout:g} s", file=sys.stderr)
    if not left:
        print(f"stopped {args.lab} ({', '.join(str(s.pid) for s, _ in replies)})")
    return 1 if left else 0


def cmd_logs(args: argparse.Namespace) -> int:
    found = _ups(args)
    if isinstance(found, int):
        return found
    logs = found[0]
    path = logs / f"{args.name}.log"
    if not path.is_file():
        known = sorted(p.stem for p in logs.glob("*.log"))
        hint = did_you_mean(args.name, known)
        return fail(f"no log for {args.name!r} in {logs}{hint}; known: {', '.join(known) or 'none yet'}")
    with open(path, encoding="utf-8", errors="replace") as stream:
        sys.stdout.write(stream.read())
        sys.stdout.flush()
        while args.follow:  # until Ctrl-C
            line = stream.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.2)
    return 0
