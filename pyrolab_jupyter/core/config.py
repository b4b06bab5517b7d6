"""The lab file: its pydantic model, loading, and messages that point at the offending line.

A lab file says which nameserver to run (or which one to use) and which
daemons host which services::

    nameserver: {host: 127.0.0.1, port: 9090, check_interval: 2, on_offline: keep}
    daemons:
      bench1:
        port: 0
        services:
          lab.laser:
            class: pyrolab_jupyter.instruments.sim:Laser
            args: {wavelength_nm: 1550}

Every problem of a file is reported at once in one ``ConfigError``, one line
each, naming the file, the line when known, the key path and what was expected.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from pyrolab_jupyter.core.addresses import DEFAULT_NAMESERVER_PORT, parse_address, parse_advertise
from pyrolab_jupyter.core.errors import ConfigError
from pyrolab_jupyter.core.safety import Interlock, Ramp, limits_pair
from pyrolab_jupyter.core.settings import SETTINGS
from pyrolab_jupyter.core.suggest import close_matches

if TYPE_CHECKING:  # YAML is read only by the lab-file functions: a client never imports it
    import yaml

__all__ = [
    "DEFAULT_NAMESERVER_PORT",
    "DaemonConfig",
    "LabConfig",
    "NameserverConfig",
    "SecurityConfig",
    "ServiceConfig",
    "load_lab",
    "parse_address",
    "parse_lab",
    "service_sections",
]

Port = Annotated[int, Field(ge=0, le=65535)]
Loc = tuple[Any, ...]

_CLASS_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class _Problem(NamedTuple):
    loc: Loc  # the key path the message is about
    message: str
    line_loc: Loc | None = None  # whose line to cite, when not loc's (an unknown key's own line)
    line: int | None = None  # the line itself, when known better than by key path


def _error(problems: list[str]) -> ConfigError:
    err = ConfigError("\n".join(problems))
    err.problems = problems  # type: ignore[attr-defined]
    return err


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NameserverConfig(_Model):
    """The nameserver to run (or, with ``external``, one that runs elsewhere)."""

    host: str = "127.0.0.1"
    port: Port = DEFAULT_NAMESERVER_PORT
    check_interval: float = Field(SETTINGS.check_interval, gt=0)
    on_offline: Literal["keep", "remove"] = "keep"
    storage: str = "memory"
    external: bool = False
    max_message_mb: float | None = Field(None, gt=0)
    """None: the lab file's top-level ``max_message_mb``."""
    """True when the file names only an address: ``pyrolab up`` then starts no nameserver."""

    @field_validator("storage")
    @classmethod
    def _storage_form(cls, value: str) -> str:
        if value != "memory" and not (value.startswith("sql:") and len(value) > 4):
            raise ValueError(f"expected 'memory' or 'sql:PATH', got {value!r}")
        return value

    @property
    def address(self) -> str:
        """``host:port``, as ``Lab()`` and ``$PYROLAB_NAMESERVER`` take it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class ServiceConfig(_Model):
    """One service of a daemon: the class to instantiate and its keyword arguments."""

    class_path: str = Field(alias="class")
    args: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    thread_safe: bool | None = None
    """None: not said in the file, the daemon decides."""
    adapter: str | None = None
    """Which adapter serves a class that is not a ``Service`` (``qcodes``, ``pymeasure``, ``pyrolab``,
    ``plain`` or an entry point's name); None: the first that claims the object."""
    limits: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)
    """Soft limits by target, ``set_power.mw: [0, 20]`` or ``power: [0, 20]``; they narrow the class's ranges."""
    ramps: dict[str, Ramp] = Field(default_factory=dict)
    interlocks: list[Interlock] = Field(default_factory=list)
    record: str | None = None
    """A JSON-lines file (relative to the lab file) the driver's VISA dialogue is appended to, for
    ``pyrolab replay``: a ``VisaInstrument``, a QCoDeS or a PyMeasure VISA driver."""
    instance_mode: Literal["single", "session", "percall"] | None = None
    """One instance for all (``single``), one per client (``session``), one per call (``percall``);
    None: the class's ``instance_mode``, else single."""

    @field_validator("limits")
    @classmethod
    def _limits_form(cls, value: dict[str, tuple[float | None, float | None]]) -> Any:
        for target, pair in value.items():
            try:
                limits_pair(pair)
            except ValueError as err:
                raise ValueError(f"limit on {target!r}: {err}") from None
        return value

    def safety(self) -> dict[str, Any]:
        """The safety rules in their plain (JSON) form, as a daemon process receives them."""
        return self.model_dump(mode="json", include={"limits", "ramps", "interlocks"})

    @field_validator("class_path")
    @classmethod
    def _class_form(cls, value: str) -> str:
        if not _CLASS_PATH.match(value):
            raise ValueError(f"expected 'module.path:ClassName', got {value!r}")
        return value

    @property
    def module_name(self) -> str:
        return self.class_path.partition(":")[0]

    @property
    def class_name(self) -> str:
        return self.class_path.partition(":")[2]


class DaemonConfig(_Model):
    """One daemon process: where it listens and the services it hosts."""

    host: str = "127.0.0.1"
    port: Port = 0
    heartbeat: float = Field(SETTINGS.heartbeat, gt=0)
    max_message_mb: float | None = Field(None, gt=0)
    """None: the lab file's top-level ``max_message_mb``."""
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    advertise: str | None = None
    """``host[:port]`` clients reach it at, when it binds a wildcard or sits behind NAT."""
    nameservers: list[str] = Field(default_factory=list)
    """More nameservers (``host:port``) it registers with, besides the lab file's own."""

    @field_validator("nameservers")
    @classmethod
    def _nameservers_form(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                parse_address(address)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        return value

    @field_validator("advertise")
    @classmethod
    def _advertise_form(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_advertise(value)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        return value


class SecurityConfig(_Model):
    """TLS files; relative paths are relative to the lab file (see ``LabConfig.resolve``)."""

    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None


def _bad_name(name: Any) -> bool:
    return not isinstance(name, str) or not name or any(c.isspace() for c in name)


def _name_rule(what: str, name: Any) -> str:
    if not isinstance(name, str):
        return f"{what} name {name!r} must be text (quote it)"
    return f"{what} name {name!r} must be non-empty and without whitespace"


def _name_problems(daemons: Any) -> list[_Problem]:
    """Daemon and service names that are empty or hold whitespace; a service name used twice.

    Works on the raw mapping of a file (so it runs even when other keys are
    wrong) as well as on validated ``DaemonConfig`` objects.
    """
    seen: dict[str, str] = {}
    found: list[_Problem] = []
    for daemon, spec in daemons.items() if isinstance(daemons, Mapping) else ():
        if _bad_name(daemon):
            found.append(_Problem(("daemons", daemon), _name_rule("daemon", daemon)))
        services = spec.get("services") if isinstance(spec, Mapping) else getattr(spec, "services", None)
        for name in services if isinstance(services, Mapping) else ():
            loc: Loc = ("daemons", daemon, "services", name)
            if _bad_name(name):
                found.append(_Problem(loc, _name_rule("service", name)))
            elif name in seen:
                found.append(_Problem(loc, f"service {name!r} is also hosted by daemon {seen[name]!r}; "
                                   "service names must be unique across daemons"))
            else:
                seen[name] = daemon
    return found


class LabConfig(_Model):
    """A whole lab file. Without ``nameserver:``, a local one on 127.0.0.1:9090 is meant."""

    nameserver: NameserverConfig = Field(default_factory=lambda: NameserverConfig())
    daemons: dict[str, DaemonConfig] = Field(default_factory=dict)
    security: SecurityConfig | None = None
    logs: str | None = None
    max_message_mb: float = Field(SETTINGS.max_message_mb, gt=0)
    """Largest message a nameserver or daemon of this lab reads (MiB); a part may set its own."""

    def max_message(self, part: NameserverConfig | DaemonConfig) -> int:
        """Bytes a part's messages may have: its own ``max_message_mb``, else the file's."""
        return int((part.max_message_mb or self.max_message_mb) * 1024 * 1024)
    """Folder for per-process logs, relative to the lab file."""

    _source: str = PrivateAttr("<string>")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _lines: dict[Loc, int] = PrivateAttr(default_factory=dict)

    @field_validator("nameserver", mode="before")
    @classmethod
    def _nameserver_address(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                host, port = parse_address(value)
            except ConfigError as err:
                raise ValueError(str(err)) from None
            return {"host": host, "port": port, "external": True}
        return value

    @model_validator(mode="after")
    def _check_names(self, info: ValidationInfo) -> LabConfig:
        if not (info.context or {}).get("names_checked"):  # parse_lab checked them already
            found = _name_problems(self.daemons)
            if found:
                raise ValueError("; ".join(f"{_dotted(p.loc)}: {p.message}" for p in found))
        return self

    @property
    def source(self) -> str:
        """The file this came from, as given to ``load_lab`` (``<string>`` otherwise)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The lab file's folder: relative paths in the file start here."""
        return self._base_dir

    def resolve(self, path: str | Path) -> Path:
        """A path written in the lab file, made absolute against the file's folder."""
        return (self._base_dir / Path(path).expanduser()).resolve()

    def locate(self, loc: Loc) -> str:
        """``'lab.yaml, line 9: daemons.b1.port'`` for a key path, to prefix a message about it."""
        return _prefix(self._source, loc, self._lines)


# --- turning problems into lines --------------------------------------------------------------


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _line(loc: Loc, lines: Mapping[Loc, int]) -> int | None:
    """The line of ``loc``'s key, else of its nearest parent key found in the file."""
    keys = tuple(str(part) for part in loc)  # YAML keys 1 or 1.5 are recorded as text
    return next((lines[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in lines), None)


def _problem_line(p: _Problem, lines: Mapping[Loc, int]) -> int | None:
    return p.line if p.line is not None else _line(p.line_loc or p.loc, lines)


def _prefix(source: str, loc: Loc, lines: Mapping[Loc, int], line: int | None = None) -> str:
    line = _line(loc, lines) if line is None else line
    head = f"{source}, line {line}" if line is not None else source
    return f"{head}: {_dotted(loc)}" if loc else head


def _unwrap(tp: Any) -> Any:
    """Drop ``None`` from ``X | None``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        return rest[0] if len(rest) == 1 else tp
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _walk(loc: Loc) -> tuple[Any, type[BaseModel] | None, FieldInfo | None]:
    """Follow the schema along ``loc``: the type found there, the model and field of its last key."""
    tp: Any = LabConfig
    model: type[BaseModel] | None = None
    field: FieldInfo | None = None
    for part in loc:
        tp = _unwrap(tp)
        if _is_model(tp):
            model = tp
            field = next((f for n, f in tp.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return None, None, None
            tp = field.annotation
        elif typing.get_origin(tp) is dict:
            tp, model, field = typing.get_args(tp)[1], None, None
        else:
            return None, None, None
    return _unwrap(tp), model, field


def _describe(field: FieldInfo) -> str:
    tp = _unwrap(field.annotation)
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if tp is NameserverConfig:
        return "a mapping or 'host:port' text"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
    text = names.get(tp, "a mapping")
    ge = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
    le = next((m.le for m in field.metadata if hasattr(m, "le")), None)
    gt = next((m.gt for m in field.metadata if hasattr(m, "gt")), None)
    if ge is not None and le is not None:
        text += f" from {ge} to {le}"
    elif gt is not None:
        text += f" greater than {gt}"
    return text


def _got(value: Any) -> str:
    if value is None:
        return "an empty value"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _keys_at(loc: Loc) -> list[str]:
    """The keys the model at ``loc`` accepts, as written in a file (``class``, not ``class_path``)."""
    model = _walk(loc)[0]
    return [f.alias or n for n, f in model.model_fields.items()] if _is_model(model) else []


def _suggest(loc: Loc) -> str | None:
    """The accepted key closest to the unknown key ending ``loc``, if any is close."""
    close = close_matches(str(loc[-1]), _keys_at(loc[:-1]), n=1)
    return close[0] if close else None


def _explain(err: Mapping[str, Any]) -> _Problem:
    """One pydantic error as (key path, plain message); an unknown key is told at its parent."""
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    if loc and loc[-1] == "[key]":
        return _Problem(loc[:-2], f"key {loc[-2]!r} must be text (quote it)")
    if kind == "extra_forbidden":
        close = _suggest(loc)
        keys = ", ".join(_keys_at(loc[:-1]))
        hint = f" (did you mean {close!r}?)" if close else f" (expected one of: {keys})"
        return _Problem(loc[:-1], f"unknown key {loc[-1]!r}{hint}", loc)
    if kind == "missing":
        return _Problem(loc[:-1], f"missing required key {loc[-1]!r}")
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind in ("value_error", "assertion_error"):
        return _Problem(loc, msg)
    field = _walk(loc)[2]
    if field is not None:
        return _Problem(loc, f"expected {_describe(field)}, got {_got(err.get('input'))}")
    return _Problem(loc, f"{msg[:1].lower()}{msg[1:]}, got {_got(err.get('input'))}")


def _pydantic_problems(errors: list[Any]) -> list[_Problem]:
    # "missing required key 'class'" adds nothing to "unknown key 'clas' (did you mean 'class'?)"
    suggested = {(*e["loc"][:-1], _suggest(e["loc"])) for e in errors if e["type"] == "extra_forbidden"}
    out: list[_Problem] = []
    for err in errors:
        loc = tuple(err["loc"])
        names_map = len(loc) == 2 or (len(loc) == 5 and loc[2] == "services")
        if loc[-1] == "[key]" and loc[0] == "daemons" and names_map:
            continue  # a non-text daemon or service name: _name_problems told it already
        if err["type"] == "missing" and loc in suggested:
            continue
        out.append(_explain(err))
    return out


# --- YAML with line numbers -------------------------------------------------------------------


def _key_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int], dups: list[_Problem],
               seen: set[int]) -> None:
    """Record the 1-based line of every mapping key, and flag keys given twice in one mapping."""
    import yaml

    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        here: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if key in here and key != "<<":
                dups.append(_Problem(loc + (key,), f"key {key!r} given twice in the same mapping", line=line))
            here.add(key)
            lines.setdefault(loc + (key,), line)
            _key_lines(value_node, loc + (key,), lines, dups, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _key_lines(item, loc + (str(i),), lines, dups, seen)


def parse_lab(text: str, source: str = "<string>", base_dir: Path | None = None) -> LabConfig:
    """Validate lab-file text; ``source`` names it in messages, ``base_dir`` anchors relative paths.

    Raises ``ConfigError`` listing every problem found, one per line (also as
    ``.problems``).
    """
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}, line {mark.line + 1}" if mark else source
        what = ", ".join(part for part in (err.context, err.problem) if part) or "invalid YAML"
        raise _error([f"{where}: YAML syntax error: {what}"]) from None
    except yaml.YAMLError as err:
        raise _error([f"{source}: YAML error: {err}"]) from None
    if data is None:
        raise _error([f"{source}: the file is empty; expected a mapping with 'nameserver' and 'daemons'"])
    if not isinstance(data, dict):
        raise _error([f"{source}: expected a mapping with 'nameserver' and 'daemons' at the top, "
                      f"got {type(data).__name__} {_got(data)}"])
    lines: dict[Loc, int] = {}
    found: list[_Problem] = []
    _key_lines(node, (), lines, found, set())
    found += _name_problems(data.get("daemons"))
    try:
        lab = LabConfig.model_validate(data, context={"names_checked": True})
    except ValidationError as err:
        found += _pydantic_problems(err.errors())
    if found:
        found.sort(key=lambda p: _problem_line(p, lines) or 0)
        raise _error([f"{_prefix(source, p.loc, lines, _problem_line(p, lines))}: {p.message}"
                      for p in found])
    lab._source, lab._lines = source, lines
    lab._base_dir = (base_dir or Path.cwd()).resolve()
    return lab


def service_sections(path: str | Path) -> tuple[list[tuple[Loc, ServiceConfig]], Callable[[Loc], str]]:
    """Every service section of a lab file that is valid by itself, even when the file as a whole is not.

    With a function that prefixes a message with the file and line of a key
    path. Lets ``pyrolab check`` import each class in the same pass that finds
    a misspelt key elsewhere. An unreadable file or broken YAML gives no sections.
    """
    import yaml

    source = str(path)
    lines: dict[Loc, int] = {}
    found: list[tuple[Loc, ServiceConfig]] = []
    try:
        text = Path(path).read_text(encoding="utf-8")
        _key_lines(yaml.compose(text, Loader=yaml.SafeLoader), (), lines, [], set())
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    daemons = data.get("daemons") if isinstance(data, dict) else None
    for daemon, spec in daemons.items() if isinstance(daemons, dict) else ():
        services = spec.get("services") if isinstance(spec, dict) else None
        for name, service in services.items() if isinstance(services, dict) else ():
            try:
                found.append((("daemons", daemon, "services", name), ServiceConfig.model_validate(service)))
            except ValidationError:
                continue  # its own problems are reported by the file's validation
    return found, lambda loc: _prefix(source, loc, lines)


def load_lab(path: str | Path) -> LabConfig:
    """Read and validate a lab file; raises ``ConfigError`` naming the file, key and expectation."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error([f"{source}: no such file"]) from None
    except UnicodeDecodeError as err:
        raise _error([f"{source}: not UTF-8 text ({err.reason} at byte {err.start})"]) from None
    except OSError as err:
        raise _error([f"{source}: cannot read the file ({err.strerror or err})"]) from None
    return parse_lab(text, source=source, base_dir=Path(path).parent)
