"""Hand-made Pyro5 frames, raw sockets from several loopback addresses, and a process's memory and threads."""

from __future__ import annotations

import contextlib
import socket
import struct
from pathlib import Path

from Pyro5 import protocol

MARSHAL, JSON, SERPENT = 2, 3, 1


def frame(msg_type: int, serializer: int, flags: int, body: bytes, declared: int | None = None) -> bytes:
    """A Pyro5 message; ``declared`` overrides the body size its header states."""
    size = len(body) if declared is None else declared
    return struct.pack(protocol._header_format, b"PYRO", protocol.PROTOCOL_VERSION, msg_type, serializer, flags, 1,
                       size, 0, b"\0" * 16, 0, protocol._magic_number) + body


def host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def connect_from(source: str, address: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(host_port(address))
    return sock


def attackers(address: str, count: int, spread: int = 10, first: int = 2) -> list[socket.socket]:
    """``count`` connections from ``spread`` loopback addresses 127.0.0.<first>..., as from several hosts."""
    return [connect_from(f"127.0.0.{first + i % spread}", address) for i in range(count)]


def closed_by_peer(sock: socket.socket, wait: float) -> bool:
    """True when the other side closed (or reset) the connection within ``wait`` seconds."""
    sock.settimeout(wait)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


def closed_now(sock: socket.socket) -> bool:
    """True when the other side has already closed (or reset) the connection; does not wait."""
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def send_and_wait_close(address: str, data: bytes, wait: float = 20.0) -> bool:
    """Send ``data`` on a new connection; True when the server then closes it."""
    with socket.create_connection(host_port(address), timeout=5) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        return closed_by_peer(sock, wait)


def status(pid: int, key: str) -> int:
    """A field of /proc/PID/status (VmHWM, VmRSS in KiB; Threads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)
