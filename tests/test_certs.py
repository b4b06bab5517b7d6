"""`pyrolab certs`: a lab CA, certificates with roles, private keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from pyrolab_jupyter.cli import main


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ca_and_certificates_with_private_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = tmp_path / "ca"
    assert main(["certs", "init", str(ca)]) == 0
    assert main(["certs", "new", "bench1", "--role", "daemon", "--dir", str(ca)]) == 0
    assert main(["certs", "new", "alice", "--role", "user", "--dir", str(ca), "--out", str(tmp_path / "alice")]) == 0
    assert _mode(ca) == 0o700
    assert _mode(ca / "lab-ca.key") == 0o600
    assert _mode(ca / "bench1.key") == 0o600
    assert _mode(tmp_path / "alice" / "alice.key") == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "alice" / "alice.pem").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "user"
    ca_cert = x509.load_pem_x509_certificate((ca / "lab-ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    assert "lab-ca.key" in capsys.readouterr().out


def test_nothing_is_overwritten_and_bad_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = tmp_path / "ca"
    assert main(["certs", "init", str(ca)]) == 0
    before = (ca / "lab-ca.key").read_bytes()
    assert main(["certs", "init", str(ca)]) == 1
    assert "--force" in capsys.readouterr().err
    assert (ca / "lab-ca.key").read_bytes() == before
    assert main(["certs", "new", "x", "--role", "daemon", "--dir", str(tmp_path / "nowhere")]) == 1
    assert "pyrolab certs init" in capsys.readouterr().err
    assert main(["certs", "new", "../x", "--role", "user", "--dir", str(ca)]) == 1
    assert main(["certs", "new", "x", "--role", "root", "--dir", str(ca)]) == 2
