"""What a server accepts from the network, checked before anything is allocated for it.

Pyro5 decodes whatever a peer sends with whatever serializer it names: a
48-byte marshal message may claim a tuple of 500 million items, a compressed
one may expand a thousandfold, and serpent (Python's parser) costs hundreds of
times its input. So every frame is checked here, from its header first:

- the declared size is refused at once above ``max_message``;
- compressed frames are refused (our clients never compress);
- marshal bodies are walked without allocating: every container's claimed
  length must fit in the bytes left, code objects are refused, and the
  estimated cost of decoding must stay within ``DECODE_FLOOR + DECODE_MULTIPLE
  × size``; json (C parser, measured at most ~20×) is accepted as is; serpent
  (measured ~500×) only up to ``SERPENT_MAX`` bytes; other serializers never.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from Pyro5 import protocol
from Pyro5.serializers import JsonSerializer, MarshalSerializer, SerpentSerializer

from pyrolab_jupyter.core.settings import SETTINGS

__all__ = [
    "DECODE_FLOOR", "DECODE_MULTIPLE", "DEFAULT_MAX_MESSAGE", "HEADER_SIZE", "SERPENT_MAX", "FrameError",
    "Header", "check_body", "parse_header", "read_annotations",
]

DEFAULT_MAX_MESSAGE = SETTINGS.max_message
HEADER_SIZE: int = protocol._header_size
DECODE_MULTIPLE = 40  # estimated decode cost per byte of message, at most (marshal's worst is ~36: empty dicts)
DECODE_FLOOR = 1024 * 1024
SERPENT_MAX = 64 * 1024  # serpent parses through Python's compiler: ~500 bytes of memory per byte of input
MAX_ANNOTATIONS = 32
_MAX_DEPTH = 1000
_MARSHAL = MarshalSerializer.serializer_id
_JSON = JsonSerializer.serializer_id
_SERPENT = SerpentSerializer.serializer_id
_NAMES = {_MARSHAL: "marshal", _JSON: "json", _SERPENT: "serpent"}


class FrameError(Exception):
    """A frame this server will not read; ``header`` (when parsed) lets it answer the peer before closing."""

    def __init__(self, message: str, header: Header | None = None) -> None:
        super().__init__(message)
        self.header = header


class Header(NamedTuple):
    """The fields of a Pyro5 message header this server looks at."""

    msg_type: int
    serializer_id: int
    flags: int
    seq: int
    data_size: int
    annotations_size: int

    @property
    def body_size(self) -> int:
        return self.data_size + self.annotations_size


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def parse_header(raw: bytes, max_message: int, expect: tuple[int, ...]) -> Header:
    """Check a 40-byte header; ``FrameError`` names what is wrong before any body is read."""
    try:
        tag, ver, mtype, ser, flags, seq, dsize, asize, _, _, magic = struct.unpack(protocol._header_format, raw)
    except struct.error as err:
        raise FrameError(f"not a Pyro5 message header ({err})") from None
    if tag != b"PYRO" or magic != protocol._magic_number:
        raise FrameError("not a Pyro5 message (bad tag or magic number)")
    if ver != protocol.PROTOCOL_VERSION:
        raise FrameError(f"Pyro5 protocol version {ver} is not supported (this server speaks "
                         f"{protocol.PROTOCOL_VERSION})")
    if mtype not in expect:
        raise FrameError(f"message type {mtype} is not expected here (expected one of {expect})")
    header = Header(mtype, ser, flags, seq, dsize, asize)
    if header.body_size > max_message:
        raise FrameError(f"a message of {_size(header.body_size)} exceeds this server's limit of "
                         f"{_size(max_message)} (max_message); send large arrays in parts or raise the limit", header)
    if flags & protocol.FLAGS_COMPRESSED:
        raise FrameError("compressed messages are refused (their decoded size cannot be bounded); "
                         "turn Pyro5's COMPRESSION off", header)
    if mtype != protocol.MSG_PING and ser not in _NAMES:
        raise FrameError(f"serializer id {ser} is refused; use marshal, json or serpent", header)
    if ser == _SERPENT and header.body_size > SERPENT_MAX:
        raise FrameError(f"a serpent message of {_size(header.body_size)} exceeds {_size(SERPENT_MAX)} "
                         "(serpent decoding costs ~500x its size); use the marshal or json serializer", header)
    return header


def check_body(header: Header, body: bytes | memoryview) -> dict[str, Any]:
    """Refuse a body whose annotations or marshal data could cost far more than its size to decode;
    returns the annotations (4-letter key -> bytes), read on the way."""
    end = header.annotations_size
    notes = read_annotations(body, end)
    if header.serializer_id == _MARSHAL and header.msg_type != protocol.MSG_PING:
        size = len(body) - end
        check_marshal(body[end:] if end else body, DECODE_FLOOR + DECODE_MULTIPLE * size)
    return notes


def read_annotations(body: bytes | memoryview, end: int) -> dict[str, Any]:
    """The annotation chunks in ``body[:end]`` (4-letter key -> bytes, or memoryviews into a large message);
    ``FrameError`` when there are too many or they do not add up to ``end``."""
    notes: dict[str, Any] = {}
    pos = 0
    try:
        while pos < end:
            if len(notes) >= MAX_ANNOTATIONS:
                raise FrameError(f"more than {MAX_ANNOTATIONS} annotation chunks")
            key, length = _CHUNK.unpack_from(body, pos)
            name = _KEYS.get(key) or key.decode("ascii", "replace")
            notes[name] = body[pos + 8:pos + 8 + length]
            pos += 8 + length
    except struct.error:
        pos = -1
    if pos != end:
        raise FrameError("annotation chunks do not add up to the declared size")
    return notes


_CHUNK = struct.Struct("!4sI")
_KEYS = {k.encode(): k for k in ("PLTO", "PLBA", "PLCK", "PLNB", "CORR", "BLBI", "STRM")}  # decoded once


# marshal type codes (Python/marshal.c) -> how to skip them and what decoding them costs; the high bit
# (FLAG_REF) only marks an object that others may refer to
_FIXED, _SIZED32, _SIZED8, _LONG, _FLOATSTR, _SEQ32, _SEQ8, _DICT = range(8)
_CODES: dict[int, tuple[int, int, int]] = {  # code -> (kind, base cost or size, cost per byte or item)
    **{ord(c): (_FIXED, 0, 0) for c in "NFTS."},
    ord("i"): (_FIXED, 4, 32), ord("g"): (_FIXED, 8, 24), ord("y"): (_FIXED, 16, 32), ord("r"): (_FIXED, 4, 0),
    ord("s"): (_SIZED32, 33, 1), ord("t"): (_SIZED32, 49, 1), ord("a"): (_SIZED32, 49, 1),
    ord("A"): (_SIZED32, 49, 1), ord("u"): (_SIZED32, 80, 4),
    ord("z"): (_SIZED8, 49, 1), ord("Z"): (_SIZED8, 49, 1),
    ord("l"): (_LONG, 32, 2), ord("f"): (_FLOATSTR, 1, 32), ord("x"): (_FLOATSTR, 2, 32),
    ord("("): (_SEQ32, 40, 8), ord("["): (_SEQ32, 56, 8), ord("<"): (_SEQ32, 216, 64), ord(">"): (_SEQ32, 216, 64),
    ord(")"): (_SEQ8, 40, 8), ord("{"): (_DICT, 64, 0),
}
_DICT_ITEM = 104  # a dict's cost per key/value pair
_SMALL_TUPLE = ord(")")
_SHORT_ASCII = frozenset({ord("z"), ord("Z")})
_NULL = ord("0")
_INT32 = struct.Struct("<i")


def check_marshal(data: bytes | bytearray | memoryview, budget: int) -> None:
    """Walk marshal data without building it: ``FrameError`` unless it is well formed and within ``budget``.

    Each container's claimed length must fit in the bytes left (every item
    takes at least one), so a forged length is refused before anything is
    allocated; costs are CPython's object sizes, rounded up.
    """
    raw = bytes(data) if len(data) <= 65536 else memoryview(data)  # bytes index faster; big ones stay views
    end = len(raw)
    pos, cost = 0, 0
    stack = [1]  # items still to read per open container; -1/-2: a dict expecting a key/a value
    if end > 6 and raw[0] & 0x7F == _SMALL_TUPLE and raw[1] == 4 and raw[2] & 0x7F in _SHORT_ASCII:
        # a call's envelope, (object id, method, args, kwargs) with short ASCII names, read in one step
        second = 4 + raw[3]
        if second + 1 < end and raw[second] & 0x7F in _SHORT_ASCII:
            pos = second + 2 + raw[second + 1]
            cost = 40 + 8 * 4 + 2 * 49 + raw[3] + raw[second + 1]  # as the loop counts a tuple and two strings
            stack = [2]
    codes, int32 = _CODES, _INT32.unpack_from  # locals: this loop runs for every token of every call
    try:
        while stack:
            top = stack[-1]
            if top > 0:
                stack[-1] = top - 1
            elif top == 0:
                stack.pop()
                continue
            elif top == -1:
                if raw[pos] & 0x7F == _NULL:
                    pos += 1
                    stack.pop()
                    continue
                stack[-1] = -2
                cost += _DICT_ITEM
            else:
                stack[-1] = -1
            code = raw[pos] & 0x7F
            pos += 1
            kind, base, per = codes[code]  # ordered by how often each kind occurs in calls
            if kind == _SIZED8:
                n = raw[pos]
                pos += 1 + n
                cost += base + per * n
            elif kind == _FIXED:
                pos += base
                cost += per
            elif kind == _SEQ8 or kind == _SEQ32:
                if kind == _SEQ8:
                    n = raw[pos]
                    pos += 1
                else:
                    n = int32(raw, pos)[0]
                    pos += 4
                if n < 0 or n > end - pos:  # every item takes at least one byte
                    raise IndexError
                cost += base + per * n
                stack.append(n)
                if len(stack) > _MAX_DEPTH:
                    raise FrameError(f"values nested more than {_MAX_DEPTH} deep are refused")
            elif kind == _DICT:
                cost += base
                stack.append(-1)
            elif kind == _FLOATSTR:
                for _ in range(base):
                    pos += 1 + raw[pos]
                cost += per
            else:  # _SIZED32, _LONG
                n = int32(raw, pos)[0]
                if kind == _LONG:
                    n = 2 * abs(n)
                elif n < 0:
                    raise IndexError
                pos += 4 + n
                cost += base + per * n
        if pos > end:  # checked once at the end: the walk itself allocates nothing but its stack
            raise IndexError
    except (IndexError, struct.error):
        raise FrameError("malformed marshal data (a length runs past the end of the message)") from None
    except KeyError:
        name = "code objects" if code == ord("c") else f"marshal type code {code!r}"
        raise FrameError(f"{name} are not accepted in a message") from None
    if cost > budget:
        raise FrameError(f"decoding this {_size(end)} message would cost more than {_size(budget)} "
                         f"(at most {DECODE_MULTIPLE} bytes per byte of message); send it in another shape")
