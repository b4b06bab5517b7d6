"""``pyrolab certs``: a lab CA and the certificates it signs for daemons, users and admins.

Keys are EC P-256 (fast handshakes), written 0600 and never overwritten; the
CA's folder is made 0700. A certificate's CN is its holder's name, its OU the
role (``daemon``, ``user`` or ``admin``) that servers enforce.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pyrolab_jupyter.core.security import ROLES

__all__ = ["CA_CERT", "CA_KEY", "make_ca", "make_cert"]

CA_CERT = "lab-ca.pem"
CA_KEY = "lab-ca.key"
_CA_DAYS = 3650
_CERT_DAYS = 825


def _write(path: Path, data: bytes, private: bool, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; remove it first or pass --force to replace it")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600 if private else 0o644)  # also when it existed with looser bits


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def make_ca(folder: str | os.PathLike[str], name: str = "pyrolab lab CA", force: bool = False) -> Path:
    """Create the lab CA in ``folder`` (``lab-ca.pem``, and ``lab-ca.key`` 0600); returns the certificate's path."""
    where = Path(folder)
    where.mkdir(parents=True, exist_ok=True)
    os.chmod(where, 0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(where / CA_KEY, _key_pem(key), private=True, force=force)
    _write(where / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), private=False, force=force)
    return where / CA_CERT


def make_cert(ca_folder: str | os.PathLike[str], name: str, role: str, out: str | os.PathLike[str] | None = None,
              force: bool = False, days: int = _CERT_DAYS) -> tuple[Path, Path]:
    """Sign a certificate for ``name`` with ``role``; writes ``NAME.pem`` and ``NAME.key`` (0600) into ``out``.

    ``out`` defaults to the CA's folder; returns (certificate, key).
    """
    if role not in ROLES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"name {name!r}: must be non-empty, without slashes, not starting with '.'")
    ca_dir = Path(ca_folder)
    try:
        ca_key = serialization.load_pem_private_key((ca_dir / CA_KEY).read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate((ca_dir / CA_CERT).read_bytes())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"no lab CA in {ca_dir} ({err.filename} missing); "
                                f"create one with `pyrolab certs init {ca_dir}`") from err
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca_dir / CA_KEY}: not a key made by `pyrolab certs init`")
    target = Path(out) if out is not None else ca_dir
    target.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    # users serve too (the receiver of their subscriptions' callbacks), so every certificate may do both
    usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                                 x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = target / f"{name}.pem", target / f"{name}.key"
    _write(key_path, _key_pem(key), private=True, force=force)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False, force=force)
    return cert_path, key_path
