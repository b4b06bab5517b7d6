"""TLS settings of one party of a lab: its certificate, its key and the lab's CA.

A ``Security`` object owns one server and one client ``ssl.SSLContext``
(mutual TLS 1.2+, certificates required both ways, only the lab's CA
trusted). Pyro5's process-wide ``config.SSL*`` and its cached contexts are
never touched, so a TLS lab and a plain lab can live in one process and each
server presents its own certificate.

A certificate's subject names its holder: CN is the identity, OU the role
(``daemon``, ``user`` or ``admin``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyrolab_jupyter.core.errors import ConfigError

__all__ = [
    "ENV_CA", "ENV_CERT", "ENV_KEY", "ROLES", "ROLE_ADMIN", "ROLE_DAEMON", "ROLE_USER", "Peer", "Security",
    "env_security", "peer_from_cert", "warn_if_exposed",
]

log = logging.getLogger(__name__)

ENV_CERT = "PYROLAB_CERT"
ENV_KEY = "PYROLAB_KEY"
ENV_CA = "PYROLAB_CA"

ROLE_DAEMON = "daemon"  # daemons and nameservers: may register and remove names
ROLE_USER = "user"  # clients: look up and call, never write to the nameserver
ROLE_ADMIN = "admin"  # a user who may also force_unlock
ROLES = (ROLE_DAEMON, ROLE_USER, ROLE_ADMIN)


@dataclasses.dataclass(frozen=True)
class Peer:
    """Who is at the other end of a verified TLS connection: the certificate's CN and OU."""

    name: str
    role: str | None  # None when the OU is missing or not one of ROLES

    @property
    def may_register(self) -> bool:
        return self.role == ROLE_DAEMON

    @property
    def may_force_unlock(self) -> bool:
        return self.role == ROLE_ADMIN

    def __str__(self) -> str:
        return f"{self.name} ({self.role or 'no role'})"


def peer_from_cert(cert: Mapping[str, Any] | None) -> Peer | None:
    """The peer named by a certificate as ``ssl.SSLSocket.getpeercert()`` returns it."""
    if not cert:
        return None
    fields: dict[str, str] = {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            fields.setdefault(str(key), str(value))
    name = fields.get("commonName")
    if not name:
        return None
    role = fields.get("organizationalUnitName")
    return Peer(name=name[:100], role=role if role in ROLES else None)


def _file(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"Security({what}={str(path)!r}): no such file; make one with `pyrolab certs` "
                          "or point to the lab's files")
    return p


class Security:
    """Mutual TLS with the lab's CA: pass the same object to servers and clients.

    Parameters
    ----------
    certfile, keyfile:
        This party's certificate and private key (PEM), signed by the lab CA.
    cafile:
        The lab CA's certificate (PEM): the only issuer trusted.
    handshake_timeout:
        Seconds a client's callback receiver waits for a TLS handshake before dropping the peer
        (nameservers and daemons cut a silent handshake like any slow message: ``Limits.frame_timeout``).
    """

    def __init__(self, certfile: str | os.PathLike[str], keyfile: str | os.PathLike[str],
                 cafile: str | os.PathLike[str], handshake_timeout: float = 5.0) -> None:
        self.certfile = _file(certfile, "certfile")
        self.keyfile = _file(keyfile, "keyfile")
        self.cafile = _file(cafile, "cafile")
        if handshake_timeout <= 0:
            raise ValueError(f"handshake_timeout={handshake_timeout!r}: must be a positive number of seconds")
        self.handshake_timeout = handshake_timeout
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._mutex = threading.Lock()
        self.identity = self._own_identity()  # also proves cert and key match, at once

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Security | None:
        """``Security`` from ``$PYROLAB_CERT``/``$PYROLAB_KEY``/``$PYROLAB_CA``; None when none is set."""
        env = os.environ if environ is None else environ
        values = {name: env.get(name, "") for name in (ENV_CERT, ENV_KEY, ENV_CA)}
        if not any(values.values()):
            return None
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise ConfigError(f"TLS needs all of ${ENV_CERT}, ${ENV_KEY} and ${ENV_CA}; "
                              f"{', '.join('$' + m for m in missing)} not set (set them, or unset all three)")
        return cls(values[ENV_CERT], values[ENV_KEY], values[ENV_CA])

    def files(self) -> dict[str, str]:
        """``{"certfile", "keyfile", "cafile"}`` as absolute paths: how a child process is handed this object."""
        return {"certfile": str(self.certfile.resolve()), "keyfile": str(self.keyfile.resolve()),
                "cafile": str(self.cafile.resolve())}

    def __repr__(self) -> str:
        return f"Security({str(self.certfile)!r}, {str(self.keyfile)!r}, {str(self.cafile)!r})"

    def _own_identity(self) -> Peer:
        context = self.client_context()  # loads cert and key: a mismatch fails here, naming the files
        del context
        from cryptography import x509  # only where TLS is used
        from cryptography.x509.oid import NameOID

        cert = x509.load_pem_x509_certificate(self.certfile.read_bytes())
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        name = str(cn[0].value) if cn else self.certfile.stem
        role = str(ou[0].value) if ou else None
        return Peer(name=name, role=role if role in ROLES else None)

    def server_context(self) -> ssl.SSLContext:
        """The context servers (daemons, nameservers, callback receivers) accept with; cached."""
        return self._context("server")

    def client_context(self) -> ssl.SSLContext:
        """The context proxies connect with; cached."""
        return self._context("client")

    def _context(self, side: str) -> ssl.SSLContext:
        with self._mutex:
            context = self._contexts.get(side)
            if context is None:
                context = self._contexts[side] = self._make(side)
            return context

    def _make(self, side: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if side == "server" else ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # lab PCs are reached by address and renamed freely: the lab CA and the peer's role vouch, not DNS
        context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED
        if side == "server":
            context.num_tickets = 0  # no resumption: nothing arrives unasked on an idle client connection
        try:
            context.load_cert_chain(str(self.certfile), str(self.keyfile))
        except (ssl.SSLError, OSError) as err:
            raise ConfigError(f"cannot load the certificate {str(self.certfile)!r} with the key "
                              f"{str(self.keyfile)!r} ({err}); do they belong together and are they PEM?") from err
        try:
            context.load_verify_locations(cafile=str(self.cafile))
        except (ssl.SSLError, OSError) as err:
            raise ConfigError(f"cannot load the lab CA {str(self.cafile)!r} ({err}); expected a PEM "
                              "certificate (lab-ca.pem from `pyrolab certs`)") from err
        return context


_from_env: dict[tuple[str, str, str], Security] = {}
_from_env_mutex = threading.Lock()


def env_security() -> Security | None:
    """``Security.from_env()``, made once per distinct setting (the magics and the CLI ask often)."""
    key = (os.environ.get(ENV_CERT, ""), os.environ.get(ENV_KEY, ""), os.environ.get(ENV_CA, ""))
    if not any(key):
        return None
    with _from_env_mutex:
        found = _from_env.get(key)
        if found is None:
            found = Security.from_env()
            assert found is not None
            _from_env[key] = found
        return found


def warn_if_exposed(host: str, security: Security | None, what: str) -> bool:
    """Log a prominent warning when ``what`` listens beyond this PC without TLS; True if it did."""
    if security is not None:
        return False
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return False
    log.warning("*** %s listens on %s WITHOUT TLS: anyone who reaches this port can call its services, "
                "re-register names and read every value; give it a Security (see `pyrolab certs`) "
                "or bind 127.0.0.1 ***", what, host or "every interface")
    return True
