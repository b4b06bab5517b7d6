"""LabManager, without any web framework: which nameserver, and what it lists."""

from __future__ import annotations

import pytest

from pyrolab_jupyter.errors import ConfigError, NameserverUnreachable
from pyrolab_jupyter.server.manager import LabManager

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def make_manager():
    made: list[LabManager] = []

    def make(*args, **kwargs) -> LabManager:
        made.append(LabManager(*args, **kwargs))
        return made[-1]

    yield make
    for manager in made:
        manager.close()


def test_the_nameserver_comes_from_the_argument_else_the_environment_else_the_default(make_manager, monkeypatch):
    monkeypatch.delenv("PYROLAB_NAMESERVER", raising=False)
    assert make_manager().nameserver == "127.0.0.1:9090"
    monkeypatch.setenv("PYROLAB_NAMESERVER", "10.1.2.3:9191")
    assert make_manager().nameserver == "10.1.2.3:9191"
    assert make_manager("192.168.0.7:9000").nameserver == "192.168.0.7:9000"


@pytest.mark.parametrize("bad", ["", "   ", "http://host:9090", "host:notaport", 42, None])
def test_a_bad_address_is_refused_and_the_old_one_kept(make_manager, bad):
    manager = make_manager("127.0.0.1:9999")
    with pytest.raises(ConfigError):
        manager.set_nameserver(bad)
    assert manager.nameserver == "127.0.0.1:9999"


@pytest.mark.network
def test_services_lists_a_running_daemon_with_the_rest_keys(make_manager, nameserver, daemon_factory):
    daemon_factory({"bench.dummy": "labservices:Dummy"}, nameserver=nameserver.uri)
    payload = make_manager(nameserver.address).services()
    assert payload["nameserver"] == nameserver.address
    (row,) = payload["services"]
    assert set(row) == {"name", "uri", "status", "last_seen", "class", "description", "locked_by"}
    assert row["name"] == "bench.dummy" and row["status"] == "online" and row["locked_by"] is None


@pytest.mark.network
def test_an_unreachable_nameserver_says_where_it_looked(make_manager, nameserver):
    manager = make_manager(nameserver.address, timeout=2.0)
    nameserver.kill()
    with pytest.raises(NameserverUnreachable, match=nameserver.address):
        manager.services()


@pytest.mark.network
def test_switching_nameservers_lists_the_new_ones_services(make_manager, nameserver_factory, daemon_factory):
    first, second = nameserver_factory(), nameserver_factory()
    daemon_factory({"other.dummy": "labservices:Dummy"}, nameserver=second.uri)
    manager = make_manager(first.address)
    assert manager.services()["services"] == []
    assert manager.set_nameserver(second.address) == second.address
    assert [row["name"] for row in manager.services()["services"]] == ["other.dummy"]


@pytest.mark.network
def test_a_tls_lab_is_listed_with_the_environment_s_certificate(tls_lab, lab_ca, make_manager, monkeypatch):
    from pyrolab_jupyter.core.security import ENV_CA, ENV_CERT, ENV_KEY

    monkeypatch.delenv(ENV_CERT, raising=False)
    with pytest.raises(NameserverUnreachable):  # without a certificate the TLS nameserver refuses us
        make_manager(tls_lab.address).services()
    user = lab_ca.security("sidebar-user", "user")
    monkeypatch.setenv(ENV_CERT, str(user.certfile))
    monkeypatch.setenv(ENV_KEY, str(user.keyfile))
    monkeypatch.setenv(ENV_CA, str(user.cafile))
    payload = make_manager(tls_lab.address, timeout=10).services()
    assert payload["nameserver"] == tls_lab.address
    assert [s["name"] for s in payload["services"]] == ["t.dummy"]


@pytest.mark.network
def test_several_nameservers_are_listed_together(make_manager, nameserver, daemon_factory):
    from conftest import free_port

    dead = f"127.0.0.1:{free_port()}"
    daemon_factory({"bench.dummy": "labservices:Dummy"}, nameserver=nameserver.uri)
    manager = make_manager(f"{dead},{nameserver.address}", timeout=5.0)
    payload = manager.services()
    assert payload["nameserver"] == f"{dead}, {nameserver.address}"
    assert [row["name"] for row in payload["services"]] == ["bench.dummy"]
    assert manager.set_nameserver(f"{nameserver.address}, {dead}") == f"{nameserver.address}, {dead}"
