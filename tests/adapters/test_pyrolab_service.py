"""PyroLab 0.5 services served unchanged, and classes marked with Pyro5's own ``@expose``."""

from __future__ import annotations

import pytest
from Pyro5.api import expose as pyro_expose

from pyrolab_jupyter.adapters import adapt, find_adapter
from pyrolab_jupyter.errors import InvalidArgument

pytestmark = [
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore:metadata .* was set from the constructor:DeprecationWarning"),
]


class PyroOnly:
    """Written for plain Pyro5."""

    @pyro_expose
    def double(self, x: int) -> int:
        return 2 * x

    def hidden(self) -> None:
        """Not exposed to Pyro5, so not served."""


def test_pyro5_exposure_decides_what_is_served():
    assert find_adapter(PyroOnly())[0] == "pyrolab"
    described = adapt(PyroOnly()).describe()
    assert set(described["methods"]) == {"double"}


def test_pyrolab_sample_service_served_unchanged(nameserver, daemon_factory, lab):
    pytest.importorskip("pyrolab")
    from pyrolab_jupyter.jupyter import panel

    daemon_factory({"pl.sample": "pyrolab.drivers.sample:SampleService"}, nameserver.address)
    remote = lab.connect("pl.sample", timeout=20)
    try:
        described = remote.describe()
        assert described["class"] == "pyrolab.drivers.sample:SampleService"
        assert {"echo", "delayed_echo", "ping", "pyrolab_version"} <= set(described["methods"])
        assert described["methods"]["delayed_echo"]["parameters"]["properties"]["seconds"]["type"] == "integer"
        assert remote.echo("hi") == "SERVER RECEIVED: hi"
        assert remote.ping() is True
        with pytest.raises(InvalidArgument, match="seconds"):
            remote.delayed_echo("x", "soon")  # an int is required: refused before the service sleeps
        remote.attribute = 5
        assert remote.attribute == 5
        shown = panel(remote)
        try:
            assert "echo" in shown.methods and "attribute" in shown.properties
        finally:
            shown.close()
    finally:
        remote.disconnect()


def test_serving_a_pyrolab_service_leaves_pyro5_config_alone():
    """Coexistence: importing PyroLab's services (as the adapter does) changes no process-wide Pyro5 setting."""
    pytest.importorskip("pyrolab")
    import subprocess
    import sys

    code = ("import Pyro5\n"
            "before = {k: getattr(Pyro5.config, k) for k in Pyro5.config.__slots__}\n"
            "from pyrolab.drivers.sample import SampleService\n"
            "from pyrolab_jupyter.adapters import adapt\n"
            "adapt(SampleService())\n"
            "after = {k: getattr(Pyro5.config, k) for k in Pyro5.config.__slots__}\n"
            "print(sorted(k for k in before if before[k] != after[k]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
