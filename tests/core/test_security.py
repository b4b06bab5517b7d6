"""Security: files, contexts per object and role, identity from the certificate, the environment."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from Pyro5 import config

from pyrolab_jupyter import Security
from pyrolab_jupyter.core.errors import ConfigError
from pyrolab_jupyter.core.security import Peer, peer_from_cert


def test_contexts_are_mutual_tls12_and_one_per_object_and_role(lab_ca: Any) -> None:
    a, b = lab_ca.security("sec-a", "daemon"), lab_ca.security("sec-b", "daemon")
    for context in (a.server_context(), a.client_context()):
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert a.server_context() is a.server_context()
    assert a.server_context() is not a.client_context()
    assert a.server_context() is not b.server_context()
    assert not config.SSL and not config.SSL_SERVERCERT and not config.SSL_CLIENTCERT


def test_identity_and_role_come_from_the_certificate(lab_ca: Any) -> None:
    assert lab_ca.security("carol", "admin").identity == Peer("carol", "admin")
    assert lab_ca.security("bench9", "daemon").identity.may_register
    assert not lab_ca.security("dave", "user").identity.may_force_unlock


def test_peer_from_cert_ignores_unknown_roles() -> None:
    cert = {"subject": ((("commonName", "eve"),), (("organizationalUnitName", "root"),))}
    assert peer_from_cert(cert) == Peer("eve", None)
    assert peer_from_cert({}) is None
    assert peer_from_cert({"subject": ((("organizationalUnitName", "user"),),)}) is None


def test_missing_or_mismatched_files_are_named(lab_ca: Any, tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="nope.pem"):
        Security(tmp_path / "nope.pem", lab_ca.folder / "sec-a.key", lab_ca.cafile)
    lab_ca.security("sec-a", "daemon")
    lab_ca.security("sec-b", "daemon")
    with pytest.raises(ConfigError, match="belong together"):
        Security(lab_ca.folder / "sec-a.pem", lab_ca.folder / "sec-b.key", lab_ca.cafile)


def test_from_env(lab_ca: Any) -> None:
    lab_ca.security("envy", "user")
    env = {"PYROLAB_CERT": str(lab_ca.folder / "envy.pem"), "PYROLAB_KEY": str(lab_ca.folder / "envy.key"),
           "PYROLAB_CA": str(lab_ca.cafile)}
    assert Security.from_env({}) is None
    sec = Security.from_env(env)
    assert sec is not None and sec.identity.name == "envy"
    with pytest.raises(ConfigError, match=r"\$PYROLAB_KEY"):
        Security.from_env({**env, "PYROLAB_KEY": ""})


def test_binding_beyond_loopback_without_tls_warns(lab_ca: Any, caplog: pytest.LogCaptureFixture) -> None:
    from pyrolab_jupyter.core.security import warn_if_exposed

    caplog.set_level("WARNING")
    assert not warn_if_exposed("127.0.0.1", None, "a daemon")
    assert not warn_if_exposed("localhost", None, "a daemon")
    assert not warn_if_exposed("0.0.0.0", lab_ca.security("sec-a", "daemon"), "a daemon")
    assert caplog.records == []
    assert warn_if_exposed("0.0.0.0", None, "the nameserver")
    assert "WITHOUT TLS" in caplog.text and "the nameserver" in caplog.text
