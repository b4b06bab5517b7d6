"""Which parts of a lab file this PC starts, and what `pyrolab check` says about placement."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pyrolab_jupyter import cli
from pyrolab_jupyter.core.addresses import is_local
from pyrolab_jupyter.core.config import parse_lab
from pyrolab_jupyter.errors import ConfigError
from pyrolab_jupyter.labcheck import check_lab_file
from pyrolab_jupyter.placement import EVERY_INTERFACE, part_hosts, place, placement_problems, relocate

# 198.51.100.0/24 (TEST-NET-2, RFC 5737) stands for the other PCs; nothing here binds or sends a packet:
# lab files are parsed and placed only, so a wildcard host is just text in them (EVERY_INTERFACE)
pytestmark = pytest.mark.skipif(is_local("198.51.100.1"), reason="this machine owns 198.51.100.1")
MANY_PCS = f"""
nameserver: {{host: 198.51.100.1, port: 9090}}
daemons:
  here:
    host: 127.0.0.1
    port: 7001
  bench2:
    host: {EVERY_INTERFACE}
    advertise: 198.51.100.3:7100
    port: 7002
  bench3:
    host: 198.51.100.4
"""


def _lab(text: str):
    return parse_lab(textwrap.dedent(text), source="lab.yaml")


def test_parts_go_to_the_pc_owning_their_host() -> None:
    lab = _lab(MANY_PCS)
    assert part_hosts(lab) == {"nameserver": "198.51.100.1", "here": "127.0.0.1", "bench2": "198.51.100.3",
                               "bench3": "198.51.100.4"}
    placed = place(lab)
    assert placed.mine == ["here"]
    assert placed.summary() == ("leaving nameserver (198.51.100.1), bench2 (198.51.100.3), "
                                "bench3 (198.51.100.4) to other PCs")


def test_as_starts_a_part_whatever_its_host() -> None:
    lab = _lab(MANY_PCS)
    assert place(lab, ["bench3", "nameserver"]).mine == ["nameserver", "bench3"]
    with pytest.raises(ConfigError, match=r"no part named 'bench9'; its parts are nameserver, here, bench2"):
        place(lab, ["bench9"])


def test_a_daemon_started_off_its_host_listens_everywhere() -> None:
    lab = _lab(MANY_PCS)
    (line,) = relocate(lab, place(lab, ["here", "bench2", "bench3"]))
    assert line.startswith("bench3: 198.51.100.4 is not this PC's address; it listens on every interface")
    assert lab.daemons["bench3"].host == EVERY_INTERFACE and lab.daemons["bench3"].advertise is None
    assert lab.daemons["here"].host == "127.0.0.1" and lab.daemons["bench2"].advertise == "198.51.100.3:7100"


def test_a_one_pc_file_is_all_here() -> None:
    lab = _lab("daemons: {b1: {host: 127.0.0.1}, b2: {}}")
    placed = place(lab)
    assert placed.mine == ["nameserver", "b1", "b2"] and placed.summary() == ""
    assert placement_problems(lab) == []  # any free port on loopback, as often as wanted


def test_check_reports_unplaceable_parts_and_shared_ports() -> None:
    problems = placement_problems(_lab(f"""
        nameserver: {{host: 198.51.100.1, port: 7001}}
        daemons:
          lo: {{host: 127.0.0.1}}
          wild: {{host: {EVERY_INTERFACE}}}
          nowhere: {{host: no-such-host.invalid}}
          twin: {{host: 198.51.100.1, port: 7001}}
          anyport: {{host: 198.51.100.2}}
    """))
    assert len(problems) == 5, problems
    lo, wild, nowhere, twin, anyport = problems
    assert "daemons.lo.host" in lo and "loopback" in lo and "every PC would start it" in lo
    assert "daemons.wild.host" in wild and "no `pyrolab up` would start wild" in wild and "advertise:" in wild
    assert "--as wild" in wild
    assert "'no-such-host.invalid' does not resolve" in nowhere
    assert "daemons.twin.port" in twin and "port 7001 on 198.51.100.1 is also nameserver's" in twin
    assert "daemons.anyport.port" in anyport and "random port, which no firewall rule can name" in anyport


def test_check_file_includes_placement(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("nameserver: {host: 198.51.100.1}\ndaemons: {b: {host: 127.0.0.1, port: 7001}}\n")
    (problem,) = check_lab_file(path)
    assert problem.startswith(f"{path}, line 2: daemons.b.host")


def test_up_with_no_part_here_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("nameserver: {host: 198.51.100.1}\ndaemons: {b: {host: 198.51.100.2, port: 7001}}\n")
    assert cli.main(["up", str(path)]) == 1
    err = capsys.readouterr().err
    assert "no part of this lab runs on this PC (its parts: nameserver on 198.51.100.1, b on 198.51.100.2)" in err
    assert "--as NAME" in err
    assert cli.main(["up", str(path), "--as", "nope"]) == 2
    assert "no part named 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()  # nothing started, nothing written
