"""The lab file: defaults, every problem at once, file/line/key in messages, addresses."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pyrolab_jupyter.core.config import (
    DaemonConfig,
    LabConfig,
    NameserverConfig,
    ServiceConfig,
    load_lab,
    parse_address,
    parse_lab,
)
from pyrolab_jupyter.core.errors import ConfigError

GOOD = """\
nameserver: {host: 127.0.0.1, port: 9090, check_interval: 2, on_offline: keep}
daemons:
  bench1:
    host: 127.0.0.1
    port: 0
    services:
      lab.laser:
        class: pyrolab_jupyter.instruments.sim:Laser
        args: {wavelength_nm: 1550}
        description: Tunable laser on bench 1
  bench2:
    heartbeat: 1.5
    services:
      lab.stage: {class: "pyrolab_jupyter.instruments.sim:Stage"}
security: {certfile: me.pem, keyfile: me.key, cafile: ca.pem}
logs: logs
"""


def write(tmp_path: Path, text: str, name: str = "lab.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_lab(path)
    assert str(info.value) == "\n".join(info.value.problems)  # type: ignore[attr-defined]
    return info.value.problems  # type: ignore[attr-defined,no-any-return]


def test_good_file_loads_with_defaults(tmp_path: Path) -> None:
    lab = load_lab(write(tmp_path, GOOD))
    assert isinstance(lab, LabConfig)
    assert lab.nameserver == NameserverConfig(check_interval=2.0)
    assert lab.nameserver.address == "127.0.0.1:9090"
    assert lab.nameserver.storage == "memory" and not lab.nameserver.external
    bench1, bench2 = lab.daemons["bench1"], lab.daemons["bench2"]
    assert isinstance(bench1, DaemonConfig)
    assert (bench1.host, bench1.port, bench1.heartbeat) == ("127.0.0.1", 0, 5.0)
    assert bench2.heartbeat == 1.5
    laser = bench1.services["lab.laser"]
    assert isinstance(laser, ServiceConfig)
    assert laser.class_path == "pyrolab_jupyter.instruments.sim:Laser"
    assert (laser.module_name, laser.class_name) == ("pyrolab_jupyter.instruments.sim", "Laser")
    assert laser.args == {"wavelength_nm": 1550}
    assert laser.thread_safe is None
    stage = bench2.services["lab.stage"]
    assert (stage.args, stage.description) == ({}, "")
    assert lab.security is not None and lab.security.cafile == "ca.pem"
    assert lab.resolve(lab.logs or "") == (tmp_path / "logs").resolve()
    assert lab.base_dir == tmp_path.resolve()
    where = lab.locate(("daemons", "bench1", "port"))
    assert where == f"{tmp_path / 'lab.yaml'}, line 5: daemons.bench1.port"


def test_minimal_file_means_local_nameserver_on_9090() -> None:
    lab = parse_lab("daemons: {}\n")
    assert lab.nameserver.address == "127.0.0.1:9090"
    assert lab.nameserver.check_interval == 5.0 and lab.nameserver.on_offline == "keep"
    assert lab.daemons == {} and lab.security is None and lab.logs is None


def test_models_build_from_python_too() -> None:
    svc = ServiceConfig(class_path="a.b:C")
    assert ServiceConfig.model_validate({"class": "a.b:C"}) == svc
    with pytest.raises(ValueError, match="also hosted by daemon 'd1'"):
        LabConfig(daemons={"d1": DaemonConfig(services={"x": svc}), "d2": DaemonConfig(services={"x": svc})})


def test_unknown_key_suggests_and_names_file_line_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("        class: pyrolab", "        clas: pyrolab"))
    (line,) = problems_of(path)
    assert line == (f"{path}, line 8: daemons.bench1.services.lab.laser: "
                    "unknown key 'clas' (did you mean 'class'?)")


def test_wrong_type_for_port_names_expected_type(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("port: 0", "port: abc"))
    assert problems_of(path) == [
        f"{path}, line 5: daemons.bench1.port: expected an integer from 0 to 65535, got 'abc'"
    ]


def test_all_problems_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        nameserver: {port: 70000, on_offline: forget, storage: disk, check_interval: 0}
        daemons:
          bench1:
            heartbeat: soon
            services:
              lab laser: {class: not-a-class-path}
              lab.cam: {class: "m:Cam", thread_safe: maybe}
        colour: blue
        """)
    problems = problems_of(path)
    assert problems == [
        f"{path}, line 1: nameserver.port: expected an integer from 0 to 65535, got 70000",
        f"{path}, line 1: nameserver.check_interval: expected a number greater than 0, got 0",
        f"{path}, line 1: nameserver.on_offline: expected one of 'keep', 'remove', got 'forget'",
        f"{path}, line 1: nameserver.storage: expected 'memory' or 'sql:PATH', got 'disk'",
        f"{path}, line 4: daemons.bench1.heartbeat: expected a number greater than 0, got 'soon'",
        f"{path}, line 6: daemons.bench1.services.lab laser: "
        "service name 'lab laser' must be non-empty and without whitespace",
        f"{path}, line 6: daemons.bench1.services.lab laser.class: "
        "expected 'module.path:ClassName', got 'not-a-class-path'",
        f"{path}, line 7: daemons.bench1.services.lab.cam.thread_safe: expected true or false, got 'maybe'",
        f"{path}, line 8: unknown key 'colour' (expected one of: nameserver, daemons, security, logs, max_message_mb)",
    ]


def test_missing_class_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "daemons:\n  b:\n    services:\n      s: {args: {}}\n")
    assert problems_of(path) == [f"{path}, line 4: daemons.b.services.s: missing required key 'class'"]


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "daemons:\n  bench1:\n    port: 1\n    host: a: b\n")
    (line,) = problems_of(path)
    assert line.startswith(f"{path}, line 4: YAML syntax error: ")
    assert "mapping values are not allowed here" in line


def test_duplicate_service_across_daemons(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        daemons:
          a:
            services:
              lab.laser: {class: "m:Laser"}
          b:
            services:
              lab.laser: {class: "m:Laser"}
        """)
    assert problems_of(path) == [
        f"{path}, line 7: daemons.b.services.lab.laser: service 'lab.laser' is also hosted by daemon 'a'; "
        "service names must be unique across daemons"
    ]


def test_key_given_twice_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "daemons:\n  a:\n    port: 1\n    port: 2\n")
    assert problems_of(path) == [
        f"{path}, line 4: daemons.a.port: key 'port' given twice in the same mapping"
    ]


def test_nameserver_as_address_means_external(tmp_path: Path) -> None:
    lab = load_lab(write(tmp_path, 'nameserver: "otherhost:9091"\ndaemons: {}\n'))
    assert lab.nameserver.external
    assert (lab.nameserver.host, lab.nameserver.port, lab.nameserver.address) == (
        "otherhost", 9091, "otherhost:9091")
    path = write(tmp_path, 'nameserver: "otherhost:port"\n', "bad.yaml")
    (line,) = problems_of(path)
    assert line.startswith(f"{path}, line 1: nameserver: 'otherhost:port' is not a nameserver address")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "expected a mapping with 'nameserver' and 'daemons' at the top, got list"),
        ("daemons: [a, b]\n", "line 1: daemons: expected a mapping, got ['a', 'b']"),
        ("nameserver: 5\n", "line 1: nameserver: expected a mapping or 'host:port' text, got 5"),
        ("daemons:\n  d:\n    services:\n      1: {class: 'm:C'}\n",
         "line 4: daemons.d.services.1: service name 1 must be text (quote it)"),
    ],
)
def test_file_shape_problems(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    (line,) = problems_of(path)
    assert line.startswith(str(path)) and problem in line


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert problems_of(path) == [f"{path}: no such file"]


def test_parse_lab_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^<string>, line 1: daemons\.d\.port: expected an integer"):
        parse_lab("daemons: {d: {port: -1}}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("otherhost:9091", ("otherhost", 9091)),
        ("otherhost", ("otherhost", 9090)),
        (" 10.0.0.5:1234 ", ("10.0.0.5", 1234)),
        ("PYRO:Pyro.NameServer@lab-pc.local:9092", ("lab-pc.local", 9092)),
        ("pyro:Pyro.NameServer@lab-pc", ("lab-pc", 9090)),
        ("[::1]:9093", ("::1", 9093)),
        ("[::1]", ("::1", 9090)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


def test_parse_address_default_port() -> None:
    assert parse_address("h", default_port=1) == ("h", 1)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("host:abc", "the port must be an integer from 1 to 65535, got 'abc'"),
        ("host:0", "from 1 to 65535"),
        ("host:70000", "from 1 to 65535"),
        ("host:", "got ''"),
        (":9090", "bad host ''"),
        ("my host:9090", "bad host 'my host'"),
        ("http://host:9090", "a URL is not an address"),
        ("PYRO:lab.laser@host:9090", "it is the URI of 'lab.laser', not of a nameserver"),
        ("PYRO:Pyro.NameServer", "a Pyro URI needs '@host:port'"),
        ("PYRONAME:lab.laser", "not a name to look up"),
        ("host:9090:1", "got '9090:1'"),
        ("[::1:9090", "unbalanced brackets"),
    ],
)
def test_parse_address_rejects_garbage(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_address(text)
    message = str(info.value)
    assert message.startswith(f"{text!r} is not a nameserver address")
    assert why in message
    assert "expected 'host:port', 'host' or 'PYRO:Pyro.NameServer@host:port'" in message


def test_safety_rules_in_the_contract_s_form() -> None:
    lab = parse_lab(textwrap.dedent("""\
        daemons:
          bench1:
            services:
              lab.laser:
                class: pyrolab_jupyter.instruments.sim:Laser
                limits: {set_power.mw: [0, 20], power: [null, 20]}
                ramps: {set_power.mw: {step: 1.0, interval: 0.05, reads: power}}
                interlocks:
                  - call: turn_on
                    require: {service: lab.shutter, property: closed, equals: true}
                    message: close the shutter first
        """))
    spec = lab.daemons["bench1"].services["lab.laser"]
    assert spec.limits == {"set_power.mw": (0, 20), "power": (None, 20)}
    assert spec.ramps["set_power.mw"].reads == "power"
    assert spec.interlocks[0].require.service == "lab.shutter"
    assert spec.safety() == {  # what a daemon process receives, as JSON
        "limits": {"set_power.mw": [0.0, 20.0], "power": [None, 20.0]},
        "ramps": {"set_power.mw": {"step": 1.0, "interval": 0.05, "reads": "power"}},
        "interlocks": [{"call": "turn_on", "message": "close the shutter first",
                        "require": {"service": "lab.shutter", "property": "closed", "equals": True}}],
    }


def test_bad_safety_rules_point_at_their_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_lab(textwrap.dedent("""\
            daemons:
              bench1:
                services:
                  lab.laser:
                    class: pyrolab_jupyter.instruments.sim:Laser
                    ramps: {set_power.mw: {step: -1, interval: 0.05}}
                    interlocks: [{call: turn_on, require: {property: closed}}]
            """), source="lab.yaml")
    text = str(info.value)
    assert "lab.yaml, line 6: daemons.bench1.services.lab.laser.ramps.set_power.mw.step" in text
    assert "lab.yaml, line 7: daemons.bench1.services.lab.laser.interlocks.0.require: missing required key 'equals'" \
        in text


def test_max_message_mb_at_the_top_and_per_part() -> None:
    lab = parse_lab("max_message_mb: 64\nnameserver: {port: 9091, max_message_mb: 8}\n"
                    "daemons:\n  a: {services: {}}\n  b: {max_message_mb: 256, services: {}}\n")
    assert lab.max_message(lab.nameserver) == 8 * 1024 * 1024
    assert lab.max_message(lab.daemons["a"]) == 64 * 1024 * 1024
    assert lab.max_message(lab.daemons["b"]) == 256 * 1024 * 1024
    assert parse_lab("daemons: {}\n").max_message(parse_lab("daemons: {}\n").nameserver) == 128 * 1024 * 1024
    with pytest.raises(ConfigError, match="max_message_mb"):
        parse_lab("max_message_mb: -1\ndaemons: {}\n")


def test_instance_mode_and_more_nameservers_in_the_lab_file() -> None:
    lab = parse_lab("daemons:\n  b1:\n    nameservers: ['127.0.0.1:9191', 'otherpc:9090']\n    services:\n"
                    "      calc: {class: 'pkg.mod:Calc', instance_mode: session}\n"
                    "      plain: {class: 'pkg.mod:Calc'}\n")
    daemon = lab.daemons["b1"]
    assert daemon.nameservers == ["127.0.0.1:9191", "otherpc:9090"]
    assert daemon.services["calc"].instance_mode == "session"
    assert daemon.services["plain"].instance_mode is None  # the class decides


@pytest.mark.parametrize(("text", "problem"), [
    ("      calc: {class: 'pkg.mod:Calc', instance_mode: per-user}\n", "instance_mode: expected one of 'single', 'session', 'percall', got 'per-user'"),
    ("      calc: {class: 'pkg.mod:Calc'}\n    nameservers: ['host:notaport']\n", "nameserver address"),
])
def test_bad_instance_mode_or_nameserver_is_named(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_lab("daemons:\n  b1:\n    services:\n" + text)
