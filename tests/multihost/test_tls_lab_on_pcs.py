"""The same lab file on several PCs with a ``security:`` section: mutual TLS across real network hosts.

Certificates come from ``pyrolab certs`` in the lab's folder, which every PC
sees (a shared filesystem): one ``daemon`` certificate for the nameserver and
the daemons (the lab file's one ``security:`` section), one ``user``
certificate for the person on the client PC. A client without a certificate
is refused; a link cut and restored recovers under TLS as it does without.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from multihost.harness import CHECK_INTERVAL, LabOnPCs, run_lab, wait_until
from multihost.netns import Network
from pyrolab_jupyter.cli import main

pytestmark = [pytest.mark.network, pytest.mark.multihost, pytest.mark.timeout(180)]

CALL_TIMEOUT = 3.0
SLACK = 2.0  # seconds allowed beyond a promised bound, for a loaded CI machine
SECURITY = "security: {certfile: certs/lab.pem, keyfile: certs/lab.key, cafile: certs/lab-ca.pem}\n"


@pytest.fixture(scope="module")
def tls_pcs(network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabOnPCs]:
    folder = tmp_path_factory.mktemp("tls-lab")
    certs = folder / "certs"
    assert main(["certs", "init", str(certs)]) == 0
    assert main(["certs", "new", "lab", "--role", "daemon", "--dir", str(certs)]) == 0
    assert main(["certs", "new", "alice", "--role", "user", "--dir", str(certs)]) == 0
    yield run_lab(network, folder, SECURITY)


def _connect(lab: LabOnPCs, name: str | None) -> str:
    """Agent code: ``lab`` as ``name``'s certificate (None: none at all) and a ``status(service)`` helper."""
    certs = lab.lab_file.parent / "certs"
    security = "None" if name is None else (
        f"Security({str(certs / f'{name}.pem')!r}, {str(certs / f'{name}.key')!r}, {str(certs / 'lab-ca.pem')!r})")
    return ("from pyrolab_jupyter import Security\n"
            f"lab = Lab({lab.nameserver!r}, timeout={CALL_TIMEOUT}, security={security})\n"
            "def status(name):\n"
            "    return next(r['status'] for r in lab.services() if r['name'] == name)\n")


def test_a_client_pc_with_a_certificate_calls_across_the_lab(tls_pcs: LabOnPCs) -> None:
    assert "TLS as lab" in tls_pcs.output("ns")  # the nameserver presents the lab file's certificate
    client = tls_pcs.agent("client")
    result = client.do(_connect(tls_pcs, "alice") + (
        "laser, stage = lab.connect('lab.laser'), lab.connect('lab.stage')\n"
        "laser.power = 3.0\n"
        "stage.move_to(7.5)\n"
        "result = [laser._pyrolab_uri, laser.power, stage._pyrolab_uri, stage.position,\n"
        "          laser.history(n=1)[0]['who']]\n"))
    assert result[:4] == ["PYRO:lab.laser@10.77.0.2:7001", 3.0, "PYRO:lab.stage@10.77.0.3:7002", 7.5]
    assert result[4].startswith("alice (pid ")  # the daemon on bench1 knows who called, from the certificate


def test_a_client_without_a_certificate_is_refused(tls_pcs: LabOnPCs) -> None:
    client = tls_pcs.agent("client")
    answer = client.send(_connect(tls_pcs, None) + "result = lab.services()", timeout=30)
    assert not answer["ok"] and answer["error"] == "NameserverUnreachable", answer
    assert "PYROLAB_CERT" in answer["message"]
    # nor may it skip the nameserver and speak plain Pyro5 to a daemon on another PC
    answer = client.send("from Pyro5.api import Proxy\n"
                         "with Proxy('PYRO:lab.laser@10.77.0.2:7001') as plain:\n"
                         "    plain._pyroTimeout = 5\n"
                         "    plain.set_power(1.0)\n", timeout=30)
    assert not answer["ok"], answer
    wait_until(lambda: "refused 10.77.0.4 at the TLS handshake" in tls_pcs.output("bench1"), 10,
               "bench1's daemon logs the refusal")
    assert client.do(_connect(tls_pcs, "alice") + "result = lab.connect('lab.laser').power") == 3.0


def test_a_cut_link_recovers_under_tls(tls_pcs: LabOnPCs) -> None:
    """bench1's cable is pulled for 6 s: offline within two check intervals, online and callable after."""
    net, bench1 = tls_pcs.network, tls_pcs.pcs["bench1"]
    client = tls_pcs.agent("client")
    client.do(_connect(tls_pcs, "alice") + "laser = lab.connect('lab.laser')\nlaser.power = 2.0")
    cut = time.monotonic()
    net.cut(bench1)
    try:
        answer = client.send("result = laser.power", timeout=30)
        assert not answer["ok"] and answer["error"] in ("ServiceOffline", "CallTimeout"), answer
        assert answer["elapsed"] <= CALL_TIMEOUT + SLACK
        wait_until(lambda: client.send("result = status('lab.laser')").get("result") == "offline",
                   2 * CHECK_INTERVAL + SLACK + 5, "lab.laser marked offline")
        offline = time.monotonic() - cut
        time.sleep(max(0.0, cut + 6 - time.monotonic()))
    finally:
        net.restore(bench1)
    restored = time.monotonic()
    wait_until(lambda: client.send("result = status('lab.laser')").get("result") == "online", 30,
               "lab.laser online again after the restore")
    wait_until(lambda: client.send("result = laser.power").get("result") == 2.0, 30, "calls back over TLS")
    print(f"\nTLS lab, bench1 cut: offline seen after {offline:.2f} s; "
          f"online and callable {time.monotonic() - restored:.2f} s after the restore")
