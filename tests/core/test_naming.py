"""Nameserver addresses: one, or several (a list, or comma-separated, in $PYROLAB_NAMESERVER too)."""

from __future__ import annotations

import pytest

from pyrolab_jupyter.core.naming import nameserver_address, nameserver_addresses
from pyrolab_jupyter.errors import ConfigError


def test_one_or_several_addresses_in_order_without_duplicates(monkeypatch) -> None:
    monkeypatch.delenv("PYROLAB_NAMESERVER", raising=False)
    assert nameserver_addresses() == ["127.0.0.1:9090"]
    assert nameserver_addresses("pc1:9191") == ["pc1:9191"]
    assert nameserver_addresses(" pc1:9191, pc2 ,[::1]:7000,pc1:9191") == ["pc1:9191", "pc2:9090", "[::1]:7000"]
    assert nameserver_addresses(["pc1", "PYRO:Pyro.NameServer@pc2:9300"]) == ["pc1:9090", "pc2:9300"]
    monkeypatch.setenv("PYROLAB_NAMESERVER", "pc3:9000,pc4:9000")
    assert nameserver_addresses() == ["pc3:9000", "pc4:9000"]
    assert nameserver_address() == "pc3:9000"  # what registers or hosts takes the first
    assert nameserver_address("pc5:1,pc6:2") == "pc5:1"


@pytest.mark.parametrize("bad", ["pc1:9090,,pc2:9090", "pc1:notaport,pc2", "pc1,http://x:1"])
def test_a_bad_entry_is_named(bad: str) -> None:
    with pytest.raises(ConfigError, match="nameserver"):
        nameserver_addresses(bad)
