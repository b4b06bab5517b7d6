"""Which addresses are this PC's, loopback or wildcard; the interface that routes to a host; advertise text."""

from __future__ import annotations

import pytest

from pyrolab_jupyter.core.addresses import (
    is_local,
    is_loopback,
    is_wildcard,
    parse_advertise,
    resolve,
    route_address,
)
from pyrolab_jupyter.errors import ConfigError

# 198.51.100.0/24 (TEST-NET-2, RFC 5737) stands for another PC (this machine has none of it); nothing is sent


def test_loopback_and_wildcard() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("198.51.100.7")
    assert is_wildcard("0.0.0.0") and is_wildcard("::") and is_wildcard("") and is_wildcard("[::]")
    assert not is_wildcard("127.0.0.1")


def test_local_is_what_a_socket_can_bind() -> None:
    assert is_local("127.0.0.1") and is_local("localhost")
    assert not is_local("198.51.100.7")
    assert not is_local("0.0.0.0")  # every interface is no PC's address
    assert not is_local("no-such-host.invalid")


def test_resolve_and_route() -> None:
    assert resolve("10.1.2.3") == ["10.1.2.3"]
    assert resolve("no-such-host.invalid") == []
    assert route_address("127.0.0.1") == "127.0.0.1"
    assert route_address("no-such-host.invalid") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.7", ("10.0.0.7", 0)), ("gw.lab:9100", ("gw.lab", 9100)), ("[fe80::1]:7", ("fe80::1", 7)),
])
def test_parse_advertise(text: str, expected: tuple[str, int]) -> None:
    assert parse_advertise(text) == expected


@pytest.mark.parametrize("text", ["", "0.0.0.0", "host:", "host:x", "host:70000", "[::1"])
def test_parse_advertise_refuses_with_the_expected_form(text: str) -> None:
    with pytest.raises(ConfigError, match=r"expected 'host' or 'host:port'"):
        parse_advertise(text)
