"""The multi-host harness: a lab file run on several "PCs" (network namespaces on a bridge).

``network`` builds the namespaces (root and iproute2 needed, else the tests
skip saying so); ``lab_pcs`` writes one lab file and runs ``pyrolab up`` of
that same file on three PCs (nameserver, bench1, bench2), each starting only
its own part; tests add agents (Python processes on a PC that run snippets)
to act as clients. Everything is torn down at the end of the module, also
when a test fails.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from multihost.harness import CHECK_INTERVAL, LAB_FILE, NS_PORT, LabOnPCs, wait_until
from multihost.netns import Network, remove_stale, unavailable


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    """Namespaces on a bridge (no PCs yet); deleted, with every process started in them, at the end."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    remove_stale()
    try:
        net = Network()
    except (RuntimeError, OSError) as err:
        pytest.skip(f"cannot build network namespaces here: {err}")
    try:
        yield net
    finally:
        net.close()


@pytest.fixture(scope="module")
def lab_pcs(network: Network, tmp_path_factory: pytest.TempPathFactory) -> LabOnPCs:
    """PCs ns, bench1, bench2, client; the same ``pyrolab up LAB.yaml`` started on the first three."""
    pcs = {name: network.add(name) for name in ("ns", "bench1", "bench2", "client")}
    folder = tmp_path_factory.mktemp("lab")  # one folder seen by every PC: a shared filesystem
    lab_file = folder / "lab.yaml"
    lab_file.write_text(LAB_FILE.format(ns=pcs["ns"].address, ns_port=NS_PORT, check=CHECK_INTERVAL,
                                        bench1=pcs["bench1"].address, bench2=pcs["bench2"].address))
    outputs, ups = {}, {}
    for name in ("ns", "bench1", "bench2"):
        outputs[name] = folder / f"up-output-{name}.txt"
        with outputs[name].open("w") as out:
            ups[name] = pcs[name].popen([sys.executable, "-m", "pyrolab_jupyter.cli", "up", str(lab_file)],
                                        stdout=out, stderr=subprocess.STDOUT)
    lab = LabOnPCs(network, pcs, lab_file, outputs, ups)
    for name, part in (("ns", "nameserver at"), ("bench1", "registered with"), ("bench2", "registered with")):
        wait_until(lambda: part in lab.output(name) or ups[name].poll() is not None, 60, f"up on {name}")
        assert ups[name].poll() is None, f"pyrolab up on {name} exited:\n{lab.output(name)}"
    return lab
