"""What a nameserver or daemon grants the network: message size, connections, timeouts, threads.

One home for these defaults (README "Security and limits" states them); a
server takes a ``Limits`` and ``max_message`` may be given on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyrolab_jupyter.core.frames import DEFAULT_MAX_MESSAGE

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """What one server grants the network; the one home of these defaults.

    ``max_message``: bytes per message (declared size refused from the header).
    ``max_connections`` (clipped to the open-file limit) and ``max_per_peer``
    (per client address: a lab's notebooks often share a host). A connection
    with nothing to say for ``idle_timeout`` seconds is closed (not one a lock
    or a session instance depends on); a message must arrive within
    ``frame_timeout`` plus its size at ``min_rate`` bytes/s; a reply must be
    taken within ``send_timeout``. ``workers`` threads handle messages. A peer that
    vanished without closing (power cut, cable pulled) is found by TCP keepalive
    probes after ``keepalive`` seconds of silence (then 3 probes 5 s apart: about
    30 s in all), so its connection, and any lock it held, does not stay forever.
    ``max_bulk``: bytes of one array sent out of band (``core.bulk``), and of
    all uploads waiting to be claimed together.
    """

    max_message: int = DEFAULT_MAX_MESSAGE
    max_connections: int = 4096
    max_per_peer: int = 256
    idle_timeout: float = 300.0
    frame_timeout: float = 10.0
    min_rate: float = 1024 * 1024
    send_timeout: float = 60.0
    workers: int = 128
    max_buffered: int = 512 * 1024 * 1024
    keepalive: float = 10.0
    max_bulk: int = 2 * 1024 * 1024 * 1024

    def connection_cap(self) -> int:
        """``max_connections``, kept under the open-file limit where the platform has one."""
        try:
            import resource  # Unix only
        except ImportError:
            return self.max_connections
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        room = self.max_connections if soft == resource.RLIM_INFINITY else min(self.max_connections, soft - 64)
        return max(1, room)
