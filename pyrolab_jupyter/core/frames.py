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
from dataclasses import dataclass

from Pyro5 import protocol
from Pyro5.serializers import JsonSerializer, MarshalSerializer, SerpentSerializer

__all__ = [
    "DECODE_FLOOR", "DECODE_MULTIPLE", "DEFAULT_MAX_MESSAGE", "HEADER_SIZE", "SERPENT_MAX", "FrameError",
    "Header", "check_body", "parse_header",
]

DEFAULT_MAX_MESSAGE = 128 * 1024 * 1024
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


@dataclass(frozen=True)
class Header:
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


def check_body(header: Header, body: bytes | bytearray | memoryview) -> None:
    """Refuse a body whose annotations or marshal data could cost far more than its size to decode."""
    view = memoryview(body)
    pos, count = 0, 0
    while pos < header.annotations_size:
        count += 1
        if count > MAX_ANNOTATIONS:
            raise FrameError(f"more than {MAX_ANNOTATIONS} annotation chunks")
        length = int.from_bytes(view[pos + 4:pos + 8], "big")
        pos += 8 + length
    if pos != header.annotations_size:
        raise FrameError("annotation chunks do not add up to the declared size")
    if header.serializer_id == _MARSHAL and header.msg_type != protocol.MSG_PING:
        data = view[header.annotations_size:]
        check_marshal(data, DECODE_FLOOR + DECODE_MULTIPLE * len(data))


# marshal type codes (Python/marshal.c); the high bit (FLAG_REF) only marks an object others may refer to
_FIXED = {ord("N"): (0, 0), ord("F"): (0, 0), ord("T"): (0, 0), ord("S"): (0, 0), ord("."): (0, 0),
          ord("i"): (4, 32), ord("g"): (8, 24), ord("y"): (16, 32), ord("r"): (4, 0)}
_SIZED32 = {ord("s"): (33, 1), ord("t"): (49, 1), ord("a"): (49, 1), ord("A"): (49, 1), ord("u"): (80, 4)}
_SIZED8 = {ord("z"): 49, ord("Z"): 49}
_SEQ32 = {ord("("): (40, 8), ord("["): (56, 8), ord("<"): (216, 64), ord(">"): (216, 64)}
_DICT_ITEM = 104  # a dict's cost per key/value pair


def check_marshal(data: bytes | bytearray | memoryview, budget: int) -> None:
    """Walk marshal data without building it: ``FrameError`` unless it is well formed and within ``budget``.

    Each container's claimed length must fit in the bytes left (every item
    takes at least one), so a forged length is refused before anything is
    allocated; costs are CPython's object sizes, rounded up.
    """
    view = memoryview(data)
    end = len(view)
    pos, cost = 0, 0
    stack = [1]  # items still to read per open container; -1/-2: a dict expecting a key/a value

    def need(n: int) -> None:
        if n < 0 or pos + n > end:
            raise FrameError("malformed marshal data (a length runs past the end of the message)")

    while stack:
        top = stack[-1]
        if top == 0:
            stack.pop()
            continue
        need(1)
        code = view[pos] & 0x7F
        pos += 1
        if top == -1:
            if code == ord("0"):
                stack.pop()
                continue
            stack[-1] = -2
            cost += _DICT_ITEM
        elif top == -2:
            stack[-1] = -1
        else:
            stack[-1] = top - 1
        if code in _FIXED:
            size, item = _FIXED[code]
            need(size)
            pos += size
            cost += item
        elif code in _SIZED32:
            need(4)
            n = int.from_bytes(view[pos:pos + 4], "little", signed=True)
            pos += 4
            need(n)
            pos += n
            base, per = _SIZED32[code]
            cost += base + per * n
        elif code in _SIZED8:
            need(1)
            n = view[pos]
            pos += 1
            need(n)
            pos += n
            cost += _SIZED8[code] + n
        elif code == ord("l"):
            need(4)
            n = abs(int.from_bytes(view[pos:pos + 4], "little", signed=True))
            pos += 4
            need(2 * n)
            pos += 2 * n
            cost += 32 + 2 * n
        elif code in (ord("f"), ord("x")):
            for _ in range(1 if code == ord("f") else 2):
                need(1)
                pos += 1 + view[pos]
            need(0)
            cost += 32
        elif code in _SEQ32 or code == ord(")"):
            width = 1 if code == ord(")") else 4
            need(width)
            n = int.from_bytes(view[pos:pos + width], "little", signed=width == 4)
            pos += width
            need(n)  # every item takes at least one byte
            base, per = _SEQ32.get(code, (40, 8))
            cost += base + per * n
            stack.append(n)
        elif code == ord("{"):
            cost += 64
            stack.append(-1)
        else:
            name = "code objects" if code == ord("c") else f"marshal type code {code!r}"
            raise FrameError(f"{name} are not accepted in a message")
        if len(stack) > _MAX_DEPTH:
            raise FrameError(f"values nested more than {_MAX_DEPTH} deep are refused")
        if cost > budget:
            raise FrameError(f"decoding this {_size(end)} message would cost more than {_size(budget)} "
                             f"(at most {DECODE_MULTIPLE} bytes per byte of message); send it in another shape")


def serializer_name(serializer_id: int) -> str:
    return _NAMES.get(serializer_id, f"serializer {serializer_id}")
