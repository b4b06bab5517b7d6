"""One home for every default: the lab file, the CLI, the magics and start_* all read core.settings."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys

import pytest

from pyrolab_jupyter import hosting
from pyrolab_jupyter.core.config import parse_lab
from pyrolab_jupyter.core.settings import SETTINGS, Settings


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SETTINGS.heartbeat = 1.0  # type: ignore[misc]
    assert Settings().max_message == int(Settings().max_message_mb * 1024 * 1024)


def test_lab_file_defaults_come_from_settings():
    lab = parse_lab("daemons:\n  b1:\n    services:\n      x: {class: 'pyrolab_jupyter.instruments.sim:Laser'}\n")
    assert lab.nameserver.port == SETTINGS.nameserver_port
    assert lab.nameserver.check_interval == SETTINGS.check_interval
    assert lab.daemons["b1"].heartbeat == SETTINGS.heartbeat
    assert lab.max_message_mb == SETTINGS.max_message_mb


def test_start_functions_default_to_settings():
    daemon = inspect.signature(hosting.start_daemon).parameters
    assert daemon["heartbeat"].default == SETTINGS.heartbeat
    assert daemon["register_timeout"].default == SETTINGS.register_timeout
    ns = inspect.signature(hosting.start_nameserver).parameters
    assert ns["check_interval"].default == SETTINGS.check_interval and ns["port"].default == SETTINGS.nameserver_port


def test_cli_defaults_come_from_settings():
    from pyrolab_jupyter.cli import _parser

    parser = _parser()
    ns = parser.parse_args(["nameserver"])
    assert (ns.port, ns.check_interval, ns.max_message_mb) == (
        SETTINGS.nameserver_port, SETTINGS.check_interval, SETTINGS.max_message_mb)
    daemon = parser.parse_args(["daemon", "m:C", "--name", "x"])
    assert daemon.heartbeat == SETTINGS.heartbeat
    assert parser.parse_args(["ls"]).timeout == SETTINGS.ls_timeout


def test_magics_traitlets_default_to_settings():
    magics = pytest.importorskip("pyrolab_jupyter.jupyter.magics")
    traits = magics.PyroLab.class_traits()
    assert traits["timeout"].default_value == SETTINGS.call_timeout
    assert traits["heartbeat"].default_value == SETTINGS.heartbeat
    assert traits["check_interval"].default_value == SETTINGS.check_interval
    assert traits["lock_lease"].default_value == SETTINGS.lock_lease


def test_a_client_never_imports_yaml():
    code = "import sys, pyrolab_jupyter.core.client; print('yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_parse_address_lives_with_addresses():
    from pyrolab_jupyter.core import addresses, config

    assert addresses.parse_address("[::1]:9091") == ("::1", 9091)
    assert config.parse_address is addresses.parse_address  # kept importable from the old place
