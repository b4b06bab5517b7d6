"""Server limits: defaults as documented, the connection cap under the open-file limit."""

from __future__ import annotations

import resource

from pyrolab_jupyter.core.limits import Limits


def test_defaults_are_the_documented_ones() -> None:
    limits = Limits()
    assert limits.max_message == 128 * 1024 * 1024
    assert limits.max_per_peer >= 128
    assert limits.workers < 300


def test_connection_cap_stays_under_the_open_file_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = 10**9 if soft == resource.RLIM_INFINITY else max(1, soft - 64)
    assert Limits(max_connections=10**9).connection_cap() == min(10**9, room)
    assert Limits(max_connections=10).connection_cap() == min(10, room)
