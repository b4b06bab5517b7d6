"""Which addresses are this PC's, which are loopback or wildcard, and which interface reaches a host.

A lab spans several PCs: a daemon must register an address its clients can
reach, and ``pyrolab up`` must know which parts of a lab file are this PC's.
Both questions are answered by the operating system, not by parsing
interface lists: an address is this PC's when a socket can bind to it, and
the interface that reaches a host is the one a connected UDP socket picks
(no packet is sent).
"""

from __future__ import annotations

import ipaddress
import socket

from pyrolab_jupyter.core.errors import ConfigError

__all__ = ["is_local", "is_loopback", "is_wildcard", "parse_advertise", "resolve", "route_address"]

_WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})


def resolve(host: str) -> list[str]:
    """The IP addresses ``host`` names (itself when it is one); empty when it does not resolve."""
    host = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_wildcard(host: str) -> bool:
    """``0.0.0.0``, ``::`` or empty: every interface of the PC, an address no client can use."""
    return host.strip("[]") in _WILDCARDS


def is_loopback(host: str, lookup: bool = True) -> bool:
    """True when ``host`` names only loopback addresses (``127.0.0.1``, ``::1``, ``localhost``).

    With ``lookup=False`` no name is resolved (no DNS query: a server judging
    what a client sent): only IP literals and ``localhost`` are recognised.
    """
    if not lookup:
        name = host.strip("[]").lower()
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return name == "localhost" or name.endswith(".localhost")
    addresses = resolve(host)
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def _bindable(address: str) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
    except OSError:
        return False
    return True


def is_local(host: str) -> bool:
    """True when ``host`` is one of this PC's addresses (loopback included): a socket can bind to it."""
    return not is_wildcard(host) and any(_bindable(a) for a in resolve(host))


def route_address(host: str) -> str | None:
    """This PC's address on the interface that routes to ``host``; None when no route leads there."""
    for address in resolve(host):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((address, 9))  # UDP connect only picks a route; nothing is sent
                return str(sock.getsockname()[0])
        except OSError:
            continue
    return None


def parse_advertise(text: str) -> tuple[str, int]:
    """``host[:port]`` (``[v6]:port`` too) → ``(host, port)``; port 0 means "the port it listens on"."""
    rest = text.strip()
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        ok = bool(bracket and host) and (not tail or tail.startswith(":"))
        port_text = tail[1:] if tail else "0"
    else:
        host, colon, port_text = rest.partition(":")
        ok = bool(host) and (not colon or port_text != "")
        port_text = port_text or "0"
    if not ok or not port_text.isdigit() or not 0 <= int(port_text) <= 65535 or is_wildcard(host):
        raise ConfigError(f"advertise={text!r}: expected 'host' or 'host:port' with the address clients reach "
                          "this daemon at (not a wildcard such as 0.0.0.0)")
    return host, int(port_text)
