"""`pyrolab check`'s logic: imports each class and binds its args, without constructing anything."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from pyrolab_jupyter.labcheck import check_lab_file, import_class

MODULE = '''
CONSTRUCTED = []


class Laser:
    def __init__(self, wavelength_nm: float = 1550.0, power_mw: float = 1.0) -> None:
        CONSTRUCTED.append(self)


class Stage:
    def __init__(self, port: str, *, speed: float = 1.0) -> None:
        CONSTRUCTED.append(self)


class Flexible:
    def __init__(self, **options: object) -> None:
        CONSTRUCTED.append(self)


def not_a_class() -> None:
    pass
'''


@pytest.fixture
def instruments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of fake instruments importable as ``labcheck_fakes``."""
    (tmp_path / "labcheck_fakes.py").write_text(MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "labcheck_fakes", raising=False)
    return "labcheck_fakes"


def lab(tmp_path: Path, services: str) -> Path:
    path = tmp_path / "lab.yaml"
    body = textwrap.indent(textwrap.dedent(services), " " * 6)
    path.write_text(f"daemons:\n  bench1:\n    services:\n{body}", encoding="utf-8")
    return path


def test_good_file_has_no_problems_and_constructs_nothing(tmp_path: Path, instruments: str) -> None:
    path = lab(tmp_path, """\
        lab.laser: {class: "labcheck_fakes:Laser", args: {wavelength_nm: 1310}}
        lab.stage: {class: "labcheck_fakes:Stage", args: {port: COM3, speed: 2}}
        lab.any: {class: "labcheck_fakes:Flexible", args: {whatever: 1}}
        """)
    assert check_lab_file(path) == []
    assert import_class("labcheck_fakes:Laser").__module__ == "labcheck_fakes"
    assert __import__("labcheck_fakes").CONSTRUCTED == []


def test_config_problems_become_lines(tmp_path: Path) -> None:
    path = lab(tmp_path, 'lab.laser: {clas: "m:Laser"}\n')
    assert check_lab_file(path) == [
        f"{path}, line 4: daemons.bench1.services.lab.laser: unknown key 'clas' (did you mean 'class'?)"
    ]
    assert check_lab_file(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: no such file"]


def test_missing_module(tmp_path: Path) -> None:
    path = lab(tmp_path, 'lab.laser: {class: "nosuch_pkg_xyz.mod:Laser"}\n')
    assert check_lab_file(path) == [
        f"{path}, line 4: daemons.bench1.services.lab.laser.class: "
        "cannot import 'nosuch_pkg_xyz.mod:Laser' (No module named 'nosuch_pkg_xyz')"
    ]


def test_missing_class_suggests_close_name(tmp_path: Path, instruments: str) -> None:
    path = lab(tmp_path, 'lab.laser: {class: "labcheck_fakes:Lazer"}\n')
    assert check_lab_file(path) == [
        f"{path}, line 4: daemons.bench1.services.lab.laser.class: cannot import 'labcheck_fakes:Lazer' "
        "('labcheck_fakes' has no attribute 'Lazer'; did you mean 'Laser'?)"
    ]


def test_not_a_class(tmp_path: Path, instruments: str) -> None:
    path = lab(tmp_path, 'lab.fn: {class: "labcheck_fakes:not_a_class"}\n')
    (problem,) = check_lab_file(path)
    assert "'labcheck_fakes:not_a_class' is function" in problem and problem.endswith("not a class")


def test_module_that_raises_on_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "labcheck_broken.py").write_text("raise RuntimeError('no hardware')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = lab(tmp_path, 'lab.x: {class: "labcheck_broken:X"}\n')
    (problem,) = check_lab_file(path)
    assert "cannot import 'labcheck_broken:X'" in problem
    assert "raised RuntimeError: no hardware" in problem


def test_unknown_arg_is_named_with_suggestion(tmp_path: Path, instruments: str) -> None:
    path = lab(tmp_path, """\
        lab.laser:
          class: labcheck_fakes:Laser
          args: {wavelenght_nm: 1310, colour: red}
        """)
    assert check_lab_file(path) == [
        f"{path}, line 6: daemons.bench1.services.lab.laser.args: "
        "unknown argument 'wavelenght_nm' for labcheck_fakes:Laser (did you mean 'wavelength_nm'?)",
        f"{path}, line 6: daemons.bench1.services.lab.laser.args: "
        "unknown argument 'colour' for labcheck_fakes:Laser (it takes: wavelength_nm, power_mw)",
    ]


def test_missing_required_arg_is_named(tmp_path: Path, instruments: str) -> None:
    path = lab(tmp_path, 'lab.stage: {class: "labcheck_fakes:Stage", args: {speed: 3}}\n')
    assert check_lab_file(path) == [
        f"{path}, line 4: daemons.bench1.services.lab.stage.args: "
        "missing required argument 'port' for labcheck_fakes:Stage"
    ]


def test_every_service_is_checked(tmp_path: Path, instruments: str) -> None:
    path = lab(tmp_path, """\
        a: {class: "nosuch_pkg_xyz:A"}
        b: {class: "labcheck_fakes:Stage"}
        c: {class: "labcheck_fakes:Laser", args: {x: 1}}
        """)
    problems = check_lab_file(path)
    assert [p.split(": ")[1] for p in problems] == [
        "daemons.bench1.services.a.class",
        "daemons.bench1.services.b",
        "daemons.bench1.services.c.args",
    ]


def test_security_files_must_exist(tmp_path: Path) -> None:
    (tmp_path / "me.pem").write_text("x", encoding="utf-8")
    path = tmp_path / "lab.yaml"
    path.write_text("security: {certfile: me.pem, cafile: ca.pem}\n", encoding="utf-8")
    problems = check_lab_file(path)
    assert f"{path}, line 1: security.cafile: no such file {str((tmp_path / 'ca.pem').resolve())!r}" in problems
    assert any("'keyfile' is missing" in p for p in problems), problems


def test_security_section_with_lab_certificates_is_accepted(tmp_path: Path, lab_ca: Any) -> None:
    lab_ca.security("lab-bench", "daemon")
    path = tmp_path / "lab.yaml"
    f = lab_ca.folder
    path.write_text(f"security: {{certfile: {f}/lab-bench.pem, keyfile: {f}/lab-bench.key, "
                    f"cafile: {f}/lab-ca.pem}}\n", encoding="utf-8")
    assert check_lab_file(path) == []
    path.write_text(f"security: {{certfile: {f}/lab-bench.pem, keyfile: {f}/lab-ca.key, "
                    f"cafile: {f}/lab-ca.pem}}\n", encoding="utf-8")
    assert any("belong together" in p for p in check_lab_file(path))


def test_safety_rules_on_unknown_members_are_named_with_a_guess(tmp_path: Path) -> None:
    path = lab(tmp_path, """\
        lab.laser:
          class: pyrolab_jupyter.instruments.sim:Laser
          limits: {set_power.mw: [0, 20], power: [0, 20], set_powr.mw: [0, 1], set_power.w: [0, 1]}
          ramps: {set_power.mw: {step: 1.0, interval: 0.05, reads: powr}}
          interlocks:
            - call: turn_onn
              require: {service: lab.shutter, property: closed, equals: true}
              message: close the shutter first
        """)
    where = f"{path}, line {{}}: daemons.bench1.services.lab.laser"
    assert check_lab_file(path) == [
        where.format(6) + ".limits: limit on 'set_powr.mw': Laser has no method 'set_powr' "
                          "(did you mean 'set_power'?)",
        where.format(6) + ".limits: limit on 'set_power.w': set_power() has no parameter 'w' (did you mean 'mw'?)",
        where.format(7) + ".ramps: ramp on 'set_power.mw': reads 'powr', which is not a property "
                          "(did you mean 'power'?)",
        where.format(8) + ".interlocks: interlock on 'turn_onn': no method or property of that name "
                          "(did you mean 'turn_on'?)",
    ]


def test_safety_rules_in_the_contract_s_form_pass(tmp_path: Path) -> None:
    path = lab(tmp_path, """\
        lab.laser:
          class: pyrolab_jupyter.instruments.sim:Laser
          limits: {set_power.mw: [0, 20], power: [0, 20]}
          ramps: {set_power.mw: {step: 1.0, interval: 0.05, reads: power}}
          interlocks:
            - call: turn_on
              require: {service: lab.shutter, property: closed, equals: true}
              message: close the shutter first
        lab.shutter: {class: pyrolab_jupyter.instruments.shutter:Shutter}
        """)
    assert check_lab_file(path) == []


def test_malformed_safety_rules_are_config_problems(tmp_path: Path) -> None:
    path = lab(tmp_path, """\
        lab.laser:
          class: pyrolab_jupyter.instruments.sim:Laser
          limits: {power: [20, 0]}
          ramps: {power: {step: 1.0, intervall: 0.05}}
        """)
    problems = "\n".join(check_lab_file(path))
    assert "line 6: daemons.bench1.services.lab.laser.limits: limit on 'power': [20, 0]: the lower limit is above" \
        in problems
    assert "unknown key 'intervall' (did you mean 'interval'?)" in problems


def test_a_misspelt_key_does_not_hide_a_bad_class(tmp_path: Path, instruments: str) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(textwrap.dedent("""\
        nameserver: {host: 127.0.0.1, prot: 9090}
        daemons:
          bench1:
            services:
              lab.laser: {class: "labcheck_fakes:Lazer"}
              lab.stage: {class: "labcheck_fakes:Stage", args: {prot: COM3}}
        """), encoding="utf-8")
    problems = check_lab_file(path)
    assert len(problems) == 4, problems
    assert any("prot" in p and "nameserver" in p for p in problems)
    assert any("line 5" in p and "'labcheck_fakes' has no attribute 'Lazer'; did you mean 'Laser'?" in p
               for p in problems)
    assert any("line 6" in p and "unknown argument 'prot'" in p and "'port'" in p for p in problems)
    assert any("missing required argument 'port'" in p for p in problems)


def test_any_class_and_a_qcodes_driver_with_its_constructor_arguments(tmp_path: Path, instruments: str) -> None:
    pytest.importorskip("qcodes")
    gs200 = "qcodes.instrument_drivers.yokogawa:YokogawaGS200"
    path = lab(tmp_path, f"""\
        lab.plain: {{class: "labcheck_fakes:Laser", adapter: plain}}
        lab.gs200:
          class: {gs200}
          adapter: qcodes
          args: {{name: gs200, address: "GPIB::1::INSTR", pyvisa_sim_file: "qcodes.instrument.sims:Yokogawa_GS200.yaml"}}
        """)
    assert check_lab_file(path) == []
    path = lab(tmp_path, f"""\
        lab.gs200:
          class: {gs200}
          adapter: qcodez
          args: {{name: gs200, pyvisa_simfile: x.yaml}}
        """)
    problems = check_lab_file(path)
    assert any("unknown argument 'pyvisa_simfile'" in p and "did you mean 'pyvisa_sim_file'?" in p for p in problems)
    assert any("missing required argument 'address'" in p for p in problems)
    assert any("adapter" in p and "no adapter named 'qcodez' (did you mean 'qcodes'?)" in p for p in problems)
    assert len(problems) == 3, problems
