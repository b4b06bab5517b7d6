"""Which parts of a lab file run on which PC: one file for the whole lab, each PC starts its own part.

A *part* is the lab file's nameserver (unless ``external``) or one of its
daemons. A part belongs to the PC that owns its host address: the daemon's
``host:``, or its ``advertise:`` host when it binds a wildcard such as
``0.0.0.0``. ``pyrolab up`` starts the parts of this PC (``--as NAME`` starts a
named part wherever it was meant to run) and ``pyrolab check`` reports parts
no PC would start, random ports off loopback and ports used twice on one PC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyrolab_jupyter.core.addresses import is_local, is_loopback, is_wildcard, parse_advertise, resolve
from pyrolab_jupyter.core.config import LabConfig
from pyrolab_jupyter.core.errors import ConfigError

__all__ = ["EVERY_INTERFACE", "NAMESERVER_PART", "Placement", "part_hosts", "place", "placement_problems", "relocate"]

EVERY_INTERFACE = "0.0.0.0"  # what a daemon started off its own host listens on (relocate)

NAMESERVER_PART = "nameserver"


def part_hosts(lab: LabConfig) -> dict[str, str]:
    """Each part's name → the host that decides which PC runs it (empty for a wildcard without advertise)."""
    hosts: dict[str, str] = {}
    if not lab.nameserver.external:
        hosts[NAMESERVER_PART] = "" if is_wildcard(lab.nameserver.host) else lab.nameserver.host
    for name, daemon in lab.daemons.items():
        host = daemon.host
        if is_wildcard(host):
            host = parse_advertise(daemon.advertise)[0] if daemon.advertise else ""
        hosts[name] = host
    return hosts


@dataclass(frozen=True)
class Placement:
    """The parts this PC starts (in file order) and the ones it leaves to others (name → host)."""

    mine: list[str]
    others: dict[str, str]

    def summary(self) -> str:
        """One line saying what is left to other PCs (empty when nothing is)."""
        if not self.others:
            return ""
        parts = ", ".join(f"{name} ({host or 'no host'})" for name, host in self.others.items())
        return f"leaving {parts} to other PCs"


def place(lab: LabConfig, as_parts: Sequence[str] = ()) -> Placement:
    """Split the lab's parts into this PC's and the others'; ``as_parts`` start whatever their host.

    Raises ``ConfigError`` for an ``--as`` name the file does not have.
    """
    hosts = part_hosts(lab)
    unknown = [name for name in as_parts if name not in hosts]
    if unknown:
        raise ConfigError(f"{lab.source}: no part named {', '.join(map(repr, unknown))}; its parts are "
                          f"{', '.join(hosts) or 'none'}")
    if as_parts:
        mine = [name for name in hosts if name in as_parts]
    else:
        local = {host: is_local(host) for host in set(hosts.values()) if host}
        mine = [name for name, host in hosts.items() if host and local[host]]
    return Placement(mine, {name: host for name, host in hosts.items() if name not in mine})


def relocate(lab: LabConfig, placed: Placement) -> list[str]:
    """Daemons started here with ``--as`` whose host is not this PC's listen on every interface instead.

    They then register the file's ``advertise:`` if set, else this PC's
    address towards the nameserver (the daemon moved here; clients follow
    the nameserver). Changes ``lab`` in place; returns one line per daemon moved.
    """
    moved = []
    for name in placed.mine:
        daemon = lab.daemons.get(name)
        if daemon is None or is_wildcard(daemon.host) or is_local(daemon.host):
            continue
        lab.daemons[name] = daemon.model_copy(update={"host": EVERY_INTERFACE})
        where = daemon.advertise or "this PC's address towards the nameserver"
        moved.append(f"{name}: {daemon.host} is not this PC's address; it listens on every interface "
                     f"and registers {where}")
    return moved


def placement_problems(lab: LabConfig) -> list[str]:
    """Parts no PC would start, daemons whose URIs nobody could reach, random or shared ports off loopback."""
    problems: list[str] = []
    hosts = part_hosts(lab)
    addresses = {name: resolve(host) for name, host in hosts.items() if host}  # one lookup per part
    ns_remote = not is_loopback(lab.nameserver.host)
    for name, host in hosts.items():
        loc: tuple[str, ...] = ("daemons", name) if name != NAMESERVER_PART else ("nameserver",)
        if not host and name == NAMESERVER_PART:
            problems.append(f"{lab.locate(loc + ('host',))}: {lab.nameserver.host!r} is every interface of some "
                            "PC, not an address daemons and clients can use; write the nameserver PC's address")
        elif not host:
            problems.append(f"{lab.locate(loc + ('host',))}: {lab.daemons[name].host} is every interface of "
                            f"some PC, so no `pyrolab up` would start {name}; add advertise: with the address "
                            f"of the PC it runs on (or start it there with `pyrolab up --as {name}`)")
        elif not addresses[name]:
            problems.append(f"{lab.locate(loc + ('host',))}: {host!r} does not resolve to an address here, so no "
                            f"PC would start {name}; write the PC's address or a name it resolves")
        elif name != NAMESERVER_PART and ns_remote and is_loopback(host):
            problems.append(f"{lab.locate(loc + ('host',))}: {name} listens on loopback ({host}) but the "
                            f"nameserver is at {lab.nameserver.host}: every PC would start it and no other PC "
                            "could reach it; write the address of the PC it runs on")
    used: dict[tuple[str, int], str] = {}
    ports = {NAMESERVER_PART: lab.nameserver.port} if not lab.nameserver.external else {}
    ports.update({name: daemon.port for name, daemon in lab.daemons.items()})
    for name, port in ports.items():
        if not addresses.get(name):
            continue
        at = lab.locate(("daemons", name, "port") if name != NAMESERVER_PART else ("nameserver", "port"))
        key = (addresses[name][0], port)
        if not port:
            if not is_loopback(hosts[name]):
                problems.append(f"{at}: {name} would listen on {hosts[name]} at a random port, which no "
                                "firewall rule can name; give it a port")
        elif key in used:
            problems.append(f"{at}: port {port} on {hosts[name]} is also {used[key]}'s; "
                            "give each part of one PC its own port")
        else:
            used[key] = name
    return problems
