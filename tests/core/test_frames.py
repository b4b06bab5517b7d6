"""Frame checks: headers refused before the body is read, marshal bodies walked before they are decoded."""

from __future__ import annotations

import marshal
import struct
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from Pyro5 import protocol

from pyrolab_jupyter.core.frames import (
    DECODE_FLOOR,
    DECODE_MULTIPLE,
    SERPENT_MAX,
    FrameError,
    Header,
    check_body,
    check_marshal,
    parse_header,
)

MARSHAL, JSON, SERPENT = 2, 3, 1
ANY = (protocol.MSG_CONNECT, protocol.MSG_INVOKE, protocol.MSG_PING)


def header(size: int, serializer: int = MARSHAL, flags: int = 0, msg_type: int = protocol.MSG_INVOKE) -> bytes:
    return struct.pack(protocol._header_format, b"PYRO", protocol.PROTOCOL_VERSION, msg_type, serializer, flags, 7,
                       size, 0, b"\0" * 16, 0, protocol._magic_number)


def test_declared_size_over_the_limit_is_refused_from_the_header() -> None:
    assert parse_header(header(1000), 1000, ANY).body_size == 1000
    with pytest.raises(FrameError, match="exceeds this server's limit of 1000 bytes"):
        parse_header(header(1001), 1000, ANY)
    with pytest.raises(FrameError, match="exceeds"):
        parse_header(header(2**32 - 1), 128 * 1024 * 1024, ANY)


def test_compressed_unknown_serializer_big_serpent_and_bad_headers_are_refused() -> None:
    with pytest.raises(FrameError, match="compressed messages are refused"):
        parse_header(header(10, flags=protocol.FLAGS_COMPRESSED), 1000, ANY)
    with pytest.raises(FrameError, match="serializer id 9 is refused"):
        parse_header(header(10, serializer=9), 1000, ANY)
    with pytest.raises(FrameError, match="serpent"):
        parse_header(header(SERPENT_MAX + 1, serializer=SERPENT), 10**9, ANY)
    with pytest.raises(FrameError, match="not a Pyro5 message"):
        parse_header(b"GET / HTTP/1.1\r\n" + b"x" * 24, 1000, ANY)
    with pytest.raises(FrameError, match="not expected"):
        parse_header(header(10), 1000, (protocol.MSG_CONNECT,))


@pytest.mark.parametrize("code", [b"(", b"[", b"<", b">", b"u", b"s", b"a"])
def test_forged_lengths_are_refused_without_allocating(code: bytes) -> None:
    forged = code + struct.pack("<i", 500_000_000)
    tracemalloc.start()
    with pytest.raises(FrameError, match="malformed marshal"):
        check_marshal(forged, DECODE_FLOOR)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100_000


def test_code_objects_and_deep_nesting_are_refused() -> None:
    with pytest.raises(FrameError, match="code objects"):
        check_marshal(marshal.dumps(compile("1", "x", "eval")), DECODE_FLOOR)
    nested = b"[\x01\x00\x00\x00" * 1500 + b"N"  # hand-made: marshal itself will not write this deep
    with pytest.raises(FrameError, match="nested"):
        check_marshal(nested, DECODE_FLOOR)


def test_cost_budget_bounds_what_decoding_may_allocate() -> None:
    dicts = marshal.dumps([{} for _ in range(200_000)])  # 2 bytes each, 64+ bytes each decoded
    with pytest.raises(FrameError, match="would cost more than"):
        check_marshal(dicts, 8 * len(dicts))
    check_marshal(dicts, DECODE_FLOOR + DECODE_MULTIPLE * len(dicts))


def test_annotations_are_bounded() -> None:
    chunks = b"".join(b"K%03d" % i + struct.pack("!I", 0) for i in range(40))
    with pytest.raises(FrameError, match="annotation"):
        check_body(Header(protocol.MSG_INVOKE, MARSHAL, 0, 1, 0, len(chunks)), chunks)


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.binary(max_size=30),
    lambda inner: st.lists(inner, max_size=6) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_real_marshal_message_passes_and_its_decoding_stays_within_budget(value: Any) -> None:
    data = marshal.dumps(("t.dummy", "echo", (value,), {"k": value}))
    budget = DECODE_FLOOR + DECODE_MULTIPLE * len(data)
    check_marshal(data, budget)
    tracemalloc.start()
    marshal.loads(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= budget


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_random_bytes_are_refused_or_cheap_to_decode(data: bytes) -> None:
    try:
        check_marshal(data, DECODE_FLOOR)
    except FrameError:
        return
    tracemalloc.start()
    try:
        marshal.loads(data)
    except (ValueError, EOFError, TypeError):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= DECODE_FLOOR


@pytest.mark.parametrize("call", [
    ("t.dummy", "set_power", [3.0], {}),
    ("obj_" + "ab" * 16, "__getattr__", ["power"], {}),
    ("x" * 200, "m", [[1, 2, {"a": (1, 2)}], b"\x00" * 40], {"k": None}),
])
def test_the_envelope_shortcut_counts_a_call_as_the_walk_does(call, monkeypatch) -> None:
    """check_marshal reads a call's (object id, method, ...) in one step: same verdict, same cost bound."""
    from pyrolab_jupyter.core import frames

    data = marshal.dumps(call)

    def least_budget() -> int:
        low, high = 0, 1 << 20
        while low < high:
            mid = (low + high) // 2
            try:
                frames.check_marshal(data, mid)
                high = mid
            except FrameError:
                low = mid + 1
        return low

    with_shortcut = least_budget()
    monkeypatch.setattr(frames, "_SHORT_ASCII", frozenset())  # the plain walk
    assert least_budget() == with_shortcut > 0
