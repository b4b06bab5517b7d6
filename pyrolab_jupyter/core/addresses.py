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
import re
import socket

from pyrolab_jupyter.core.errors import ConfigError
from pyrolab_jupyter.core.settings import SETTINGS

__all__ = ["DEFAULT_NAMESERVER_PORT", "is_local", "is_loopback", "is_wildcard", "parse_address", "parse_advertise", "resolve", "route_address"]

_WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})
_HOST = re.compile(r"^[A-Za-z0-9_.\-]+$")

DEFAULT_NAMESERVER_PORT = SETTINGS.nameserver_port


def _address_error(message: str) -> ConfigError:
    err = ConfigError(message)
    err.problems = [message]  # type: ignore[attr-defined]  # like the lab file's errors
    return err


def parse_address(text: str, default_port: int = DEFAULT_NAMESERVER_PORT) -> tuple[str, int]:
    """Split a nameserver address into ``(host, port)``.

    Accepts ``host:port``, ``host`` (then ``default_port``), ``[::1]:port`` and
    ``PYRO:Pyro.NameServer@host:port``; anything else raises ``ConfigError``
    saying what was expected. IPv6 hosts come back without brackets.
    """
    expected = "expected 'host:port', 'host' or 'PYRO:Pyro.NameServer@host:port'"

    def bad(why: str) -> ConfigError:
        return _address_error(f"{text!r} is not a nameserver address ({why}); {expected}")

    if not isinstance(text, str):
        raise _address_error(f"{text!r} is not a nameserver address; {expected}")
    rest = text.strip()
    if not rest:
        raise bad("it is empty")
    if "://" in rest:
        raise bad("a URL is not an address")
    if rest.upper().startswith(("PYRONAME:", "PYROMETA:")):
        raise bad("give the nameserver's own address, not a name to look up")
    if rest[:5].upper() == "PYRO:":
        obj, at, rest = rest[5:].partition("@")
        if not at:
            raise bad("a Pyro URI needs '@host:port'")
        if obj != "Pyro.NameServer":
            raise bad(f"it is the URI of {obj!r}, not of a nameserver")
    if rest.startswith("["):  # [IPv6]:port
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not host or (tail and not tail.startswith(":")):
            raise bad("unbalanced brackets around an IPv6 host")
        port_text: str | None = tail[1:] if tail else None
    else:
        host, colon, tail = rest.partition(":")
        port_text = tail if colon else None
    if not (_HOST.match(host) or (rest.startswith("[") and re.match(r"^[0-9A-Fa-f:.]+$", host))):
        raise bad(f"bad host {host!r}")
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise bad(f"the port must be an integer from 1 to 65535, got {port_text!r}")
    return host, int(port_text)


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
