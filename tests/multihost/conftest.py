"""The multi-host harness: a lab file run on several "PCs" (network namespaces on a bridge).

``network`` builds the namespaces (root and iproute2 needed, else the tests
skip saying so); ``lab_pcs`` writes one lab file and runs ``pyrolab up`` of
that same file on three PCs (nameserver, bench1, bench2), each starting only
its own part; tests add agents (Python processes on a PC that run snippets)
to act as clients. Everything is torn down at the end of the module, also
when a test fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from multihost.harness import LabOnPCs, run_lab
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
    return run_lab(network, tmp_path_factory.mktemp("lab"))  # one folder seen by every PC
