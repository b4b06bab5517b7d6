"""Recorded VISA sessions turned into a pyvisa-sim device that answers the same dialogue.

``VisaInstrument(resource, ..., record="session.jsonl")`` writes one JSON line
per exchange (``kind`` write/query/read, ``command``, ``reply`` or ``error``,
``seconds``, the terminations). ``pyrolab replay session.jsonl -o device.yaml``
reads such files and writes a pyvisa-sim file with one device per recorded
resource, at the recorded resource name, so ``VisaInstrument(resource,
backend="device.yaml@sim")`` (and the driver's tests) run without the
instrument:

- a command answered the same way becomes a dialogue (the last answer wins
  when answers differed: pyvisa-sim dialogues are fixed);
- a ``write`` followed by a ``read`` is one exchange, as on the instrument;
- state the dialogue shows becomes a property: when ``HEAD value`` was sent and
  ``HEAD?`` was asked, the replay answers ``HEAD?`` with the last value set, in
  the reply format the instrument used (``+2.50000000E+00``);
- a command the instrument never answered (a timeout) gets no answer.

What is not replayed: timing (pyvisa-sim answers at once), values that change
by themselves (noted), and side effects of one command on another (``*RST``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from pyrolab_jupyter.core.errors import ConfigError

__all__ = ["Replay", "device_document", "read_sessions", "write_device"]

_MAX_LINE = 1 << 20  # a recorded line longer than this is not one exchange
_RESOURCE = re.compile(r"^(ASRL|GPIB|TCPIP|USB|VXI|PXI|VICP|PRLGX-TCPIP|PRLGX-ASRL)\d*(?:::.*)?::(INSTR|SOCKET)$",
                       re.IGNORECASE)
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclasses.dataclass
class _Exchange:
    command: str
    reply: str | None  # None: no answer read
    timed_out: bool = False


@dataclasses.dataclass
class Replay:
    """The pyvisa-sim document, and notes on what it could not reproduce exactly."""

    document: dict[str, Any]
    notes: list[str]

    def summary(self) -> str:
        parts = []
        for resource, spec in self.document["resources"].items():
            device = self.document["devices"][spec["device"]]
            parts.append(f"{resource} ({len(device['dialogues'])} dialogues, "
                         f"{len(device.get('properties', {}))} properties)")
        return ", ".join(parts)


def read_sessions(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every recorded exchange of the files, in order; ``ConfigError`` names a bad file and line."""
    records: list[dict[str, Any]] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: cannot read the recording ({err})") from None
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if len(line) > _MAX_LINE:
                raise ConfigError(f"{path}, line {number}: longer than {_MAX_LINE} characters; not a recording")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}, line {number}: not JSON ({err.msg}); expected one exchange "
                                  "per line as VisaInstrument(record=...) writes them") from None
            if not isinstance(record, dict) or record.get("kind") not in ("write", "query", "read") or \
                    not isinstance(record.get("resource"), str):
                raise ConfigError(f"{path}, line {number}: expected an object with 'resource' and 'kind' "
                                  f"(write, query or read), got {line[:80]!r}")
            records.append(record)
    if not records:
        raise ConfigError(f"{', '.join(map(str, paths))}: no exchange recorded")
    return records


def _exchanges(records: Sequence[dict[str, Any]], notes: list[str]) -> list[_Exchange]:
    """One resource's records as exchanges: a write answered by the next read is one question."""
    out: list[_Exchange] = []
    pending: str | None = None
    for record in records:
        kind, command = record["kind"], record.get("command")
        if kind == "read":
            if pending is None:
                notes.append(f"{record['resource']}: a read with no command before it was left out")
                continue
            out.append(_Exchange(pending, None if "error" in record else str(record.get("reply", "")),
                                 timed_out="error" in record))
            pending = None
            continue
        if pending is not None:
            out.append(_Exchange(pending, None))
            pending = None
        if not isinstance(command, str):
            notes.append(f"{record['resource']}: a {kind} without a command was left out")
        elif kind == "write":
            pending = command
        elif "error" in record:
            out.append(_Exchange(command, None, timed_out=True))
        else:
            out.append(_Exchange(command, str(record.get("reply", ""))))
    if pending is not None:
        out.append(_Exchange(pending, None))
    return out


def _value_type(values: Sequence[str]) -> str:
    if values and all(_INT.match(v.strip()) for v in values):
        return "int"
    if values and all(_FLOAT.match(v.strip()) for v in values):
        return "float"
    return "str"


def _formats(kind: str) -> Iterable[str]:
    if kind == "int":
        yield from ("{:d}", "{:+d}")
        return
    for digits in range(0, 13):
        for style in ("E", "e", "f"):
            yield f"{{:.{digits}{style}}}"
            yield f"{{:+.{digits}{style}}}"
    yield from ("{:g}", "{}")


def _reply_format(kind: str, replies: Sequence[str]) -> str | None:
    """The format spec that writes every recorded reply exactly from its value, if one does."""
    if kind == "str":
        return "{:s}"
    convert = int if kind == "int" else float
    return next((fmt for fmt in _formats(kind) if all(fmt.format(convert(r)) == r for r in replies)), None)


def _name(head: str, taken: set[str]) -> str:
    base = re.sub(r"\W+", "_", head).strip("_").lower() or "value"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _split(command: str) -> tuple[str, str]:
    head, _, arg = command.partition(" ")
    return head, arg.strip()


def _properties(exchanges: Sequence[_Exchange], resource: str, notes: list[str]) -> tuple[dict[str, Any], set[str]]:
    """State the dialogue shows: ``HEAD value`` sent and ``HEAD?`` asked. Returns the properties and their commands."""
    asked = {e.command for e in exchanges if e.reply is not None}
    heads = list(dict.fromkeys(head for head, arg in map(_split, (e.command for e in exchanges))
                               if arg and f"{head}?" in asked))
    properties: dict[str, Any] = {}
    used: set[str] = set()
    taken: set[str] = set()
    for head in heads:
        timeline = [e for e in exchanges if (e.command == f"{head}?" and e.reply is not None)
                    or (_split(e.command)[0] == head and _split(e.command)[1])]
        sets = [_split(e.command)[1] for e in timeline if e.command != f"{head}?"]
        gets = [str(e.reply) for e in timeline if e.command == f"{head}?"]
        kind = _value_type(sets + gets)
        fmt = _reply_format(kind, gets)
        if fmt is None:
            kind, fmt = "str", "{:s}"
            notes.append(f"{resource}: {head}? answers in a format not rebuilt from the value; "
                         "the replay answers with the text last sent")
        convert: Any = {"int": int, "float": float, "str": str}[kind]
        first = timeline[0]
        default = str(first.reply) if first.command == f"{head}?" else _split(first.command)[1]
        state, differ = convert(default), 0
        for e in timeline:  # play the dialogue against the property: does it explain every answer?
            if e.command == f"{head}?":
                differ += fmt.format(state) != e.reply
            else:
                state = convert(_split(e.command)[1])
        if differ:
            notes.append(f"{resource}: {head}? answered {differ} time(s) other than the last value set "
                         "(it changes by itself?); the replay answers with the last value set")
        set_replies = {e.reply for e in timeline if e.command != f"{head}?"}
        setter: dict[str, Any] = {"q": head.replace("{", "{{").replace("}", "}}") + " {:s}"}
        if len(set_replies) == 1 and None not in set_replies:
            setter["r"] = set_replies.pop()
        prop: dict[str, Any] = {"default": default, "getter": {"q": f"{head}?", "r": fmt}, "setter": setter}
        if kind != "str":
            prop["specs"] = {"type": kind}
        properties[_name(head, taken)] = prop
        used.update(e.command for e in timeline)
    return properties, used


def _eom(resource: str, records: Sequence[dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    found = _RESOURCE.match(resource)
    if found is None:
        raise ConfigError(f"{resource!r}: not a VISA resource name pyvisa-sim can serve "
                          "(expected e.g. GPIB0::9::INSTR, USB0::...::INSTR, TCPIP0::host::port::SOCKET)")
    interface = found.group(1).upper().replace("PRLGX-", "")
    pairs = {(r.get("write_termination", "\n"), r.get("read_termination", "\n")) for r in records}
    write_term, read_term = records[0].get("write_termination", "\n"), records[0].get("read_termination", "\n")
    if len(pairs) > 1:
        notes.append(f"{resource}: the terminations changed during the session; the replay uses the first "
                     f"({write_term!r} to the instrument, {read_term!r} back)")
    return {f"{interface} {found.group(2).upper()}": {"q": write_term, "r": read_term}}


def device_document(records: Sequence[dict[str, Any]]) -> Replay:
    """The pyvisa-sim document answering ``records`` (one device per recorded resource)."""
    notes: list[str] = []
    by_resource: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_resource.setdefault(record["resource"], []).append(record)
    devices: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    for resource, mine in by_resource.items():
        exchanges = _exchanges(mine, notes)
        properties, used = _properties(exchanges, resource, notes)
        answers: dict[str, str | None] = {}
        for e in exchanges:
            if e.command in used:
                continue
            if e.reply is not None or e.command not in answers:
                if e.command in answers and answers[e.command] not in (None, e.reply):
                    notes.append(f"{resource}: {e.command!r} was answered differently; the replay gives "
                                 f"the last answer {e.reply!r}")
                answers[e.command] = e.reply
        dialogues = [{"q": q} if r is None else {"q": q, "r": r} for q, r in answers.items()]
        name = f"replay of {resource}"
        device: dict[str, Any] = {"eom": _eom(resource, mine, notes), "dialogues": dialogues}
        if properties:
            device["properties"] = properties
        devices[name] = device
        resources[resource] = {"device": name}
    return Replay({"spec": "1.1", "devices": devices, "resources": resources}, notes)


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types here
    """Terminations and other control characters written as ``"\\r\\n"``, readable and exact."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(ch in value for ch in "\r\n\t") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def write_device(sessions: Sequence[str | Path], output: str | Path) -> Replay:
    """Read recordings and write the pyvisa-sim file answering them; returns what was written."""
    replay = device_document(read_sessions(sessions))
    header = "# pyvisa-sim device written by `pyrolab replay` from " + ", ".join(map(str, sessions)) + "\n"
    text = yaml.dump(replay.document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    Path(output).write_text(header + text, encoding="utf-8")
    return replay
