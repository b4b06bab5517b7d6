"""lab.snapshot(): every online service's properties, one round trip per daemon, with a code fingerprint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyrolab_jupyter.core.snapshot import class_version, fingerprint

pytestmark = pytest.mark.network

SIM = "pyrolab_jupyter.instruments.sim"


def test_snapshot_of_the_simulated_lab(lab: Any, daemon_factory: Any, tmp_path: Path) -> None:
    daemon_factory({"sim.laser": f"{SIM}:Laser", "sim.meter": f"{SIM}:PowerMeter"}, lab.address)
    stage_daemon = daemon_factory({"sim.stage": f"{SIM}:Stage"}, lab.address)
    laser = lab.connect("sim.laser")
    laser.lock(lease=30)
    first = lab.snapshot()
    assert set(first) >= {"time", "services", "fingerprint", "taken_by", "nameserver"}
    assert set(first["services"]) == {"sim.laser", "sim.meter", "sim.stage"}
    snap_laser = first["services"]["sim.laser"]
    assert snap_laser["class"] == f"{SIM}.Laser" or snap_laser["class"].endswith("Laser")
    assert set(snap_laser["properties"]) >= set(laser.describe()["properties"])
    assert snap_laser["locked_by"] == laser.lock_info()["holder"]
    assert len(first["fingerprint"]) == 40 and first["unreachable"] == {}
    assert "unverified" in first["taken_by"]

    path = tmp_path / "run42.json"
    second = lab.snapshot(path)
    assert json.loads(path.read_text())["fingerprint"] == second["fingerprint"] == first["fingerprint"]

    stage_daemon.stop()  # gone: no longer online (or unreachable) and the fingerprint changes
    third = lab.snapshot()
    assert "sim.stage" not in third["services"]
    assert third["fingerprint"] != first["fingerprint"]
    laser.unlock()


def test_class_version_is_git_like_and_fingerprint_orders_nothing() -> None:
    from pyrolab_jupyter.instruments.sim import Laser, Stage

    assert len(class_version(Laser)) == 40 and class_version(Laser) != class_version(Stage)
    a = {"x": {"class": "A", "version": "1"}, "y": {"class": "B", "version": "2"}}
    b = {"y": {"class": "B", "version": "2"}, "x": {"class": "A", "version": "1"}}
    assert fingerprint(a) == fingerprint(b) != fingerprint({**a, "x": {"class": "A", "version": "3"}})
