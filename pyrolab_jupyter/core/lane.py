"""The lean request path: Pyro5's own wire format, written and read without Pyro5's per-message machinery.

A call from this library's proxy to this library's daemon is an ordinary
Pyro5 ``MSG_INVOKE`` in marshal (a stock Pyro5 peer on either end still
understands it), but both ends build and parse it directly. Measured per
call, Pyro5 spends on the client three ``recv`` calls and a ``recreate_classes``
walk of the result, and on the server a ``uuid4``, a ``getpeername``, the
three-step receive again and a ``SendingMessage``: together about as much as
the validation, lock check, gate and audit this library adds. Here the client
sends once and usually receives once; the server answers from the message it
already holds.

What the lane does not know goes Pyro5's own way, unchanged: one-way and batch
calls, other serializers, objects that are not servants (the nameserver, Pyro5's
``Pyro.Daemon``), members a servant does not expose, and values marshal cannot
carry. Every frame was checked by ``core.frames`` before it gets here.
"""

from __future__ import annotations

import logging
import marshal
import socket
import ssl
import struct
import threading
import uuid
from typing import Any

from Pyro5 import config, errors, protocol, serializers
from Pyro5.callcontext import current_context

from pyrolab_jupyter.core.frames import FrameError, read_annotations

__all__ = ["HELLO", "NotOnLane", "chunks", "enter", "invoke", "serve", "tell_once"]

log = logging.getLogger(__name__)

HELLO = "hello from pyrolab-jupyter, lane 1"  # the daemon's handshake answer: its peer may use the lane
_HEADER = struct.Struct(protocol._header_format)
_SIZE = _HEADER.size
_MARSHAL = serializers.MarshalSerializer.serializer_id
_NO_CORRELATION = bytes(16)
_FIRST_READ = 64 * 1024  # a reply this size or smaller usually comes in one recv
_GATHER = 64 * 1024  # a call body larger than this is not copied next to its header
_CORR = protocol.FLAGS_CORR_ID
_RESULT, _INVOKE, _EXCEPTION, _STREAM = (protocol.MSG_RESULT, protocol.MSG_INVOKE, protocol.FLAGS_EXCEPTION,
                                         protocol.FLAGS_ITEMSTREAMRESULT)


def chunks(notes: dict[str, bytes]) -> bytes:
    """Pyro5's annotation chunks (4-letter key, big-endian length, bytes), ready to send."""
    return b"".join(key.encode("ascii") + len(value).to_bytes(4, "big") + value for key, value in notes.items())


# the client end

_told: set[str] = set()
_told_mutex = threading.Lock()


def tell_once(key: str, message: str, *args: Any) -> None:
    """Log why a call goes Pyro5's own way, once per ``key`` (a daemon's address, a value's type)."""
    with _told_mutex:
        if key in _told or len(_told) > 1000:
            return
        _told.add(key)
    log.info(message, *args)


class RemoteRaised(Exception):
    """Carries the daemon's answer, an exception, out of the receive path (which releases on errors of its own)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


class NotOnLane(Exception):
    """The call cannot take the lane (a value marshal cannot carry): nothing was sent."""


def invoke(proxy: Any, method: str, vargs: Any, kwargs: dict[str, Any], notes: bytes) -> Any:
    """Call ``method`` over ``proxy``'s connection (connected already) and return the result, or raise the
    remote error as Pyro5 would (``TimeoutError``, ``ConnectionClosedError``, the rebuilt exception).
    ``NotOnLane`` when a value needs Pyro5's converting serializer. The proxy is lent to one thread."""
    conn = proxy._pyroConnection
    try:
        data = marshal.dumps((conn.objectId, method, vargs, kwargs))
    except ValueError as err:
        raise NotOnLane(f"{method}(): {err}") from None
    seq = (proxy._pyroSeq + 1) & 0xFFFF
    proxy._pyroSeq = seq
    header = _HEADER.pack(b"PYRO", protocol.PROTOCOL_VERSION, _INVOKE, _MARSHAL, 0, seq, len(data), len(notes),
                          _NO_CORRELATION, 0, protocol._magic_number)
    sock = conn.sock
    try:
        if len(data) <= _GATHER or isinstance(sock, ssl.SSLSocket) or not hasattr(sock, "sendmsg"):
            sock.sendall(header + notes + data)
        else:
            _send_gathered(sock, [header + notes, data])
        return _reply(sock, seq)
    except RemoteRaised as raised:  # the daemon answered: the connection is in step
        raise raised.error from None
    except socket.timeout:
        proxy._pyroRelease()
        raise errors.TimeoutError("receiving: timeout") from None
    except (OSError, errors.CommunicationError) as err:
        proxy._pyroRelease()  # a reply may be half read: this connection is out of step
        if isinstance(err, errors.CommunicationError):
            raise
        raise errors.ConnectionClosedError(f"receiving: connection lost: {err}") from None
    except BaseException:  # KeyboardInterrupt mid-call: the reply would arrive as the next call's
        proxy._pyroRelease()
        raise


def _send_gathered(sock: socket.socket, parts: list[bytes]) -> None:
    views = [memoryview(p) for p in parts]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]


def _reply(sock: socket.socket, seq: int) -> Any:
    first = sock.recv(_FIRST_READ)
    while len(first) < _SIZE:
        more = sock.recv(_FIRST_READ)
        if not more:
            raise errors.ConnectionClosedError("receiving: connection lost")
        first += more
    tag, version, kind, serializer, flags, got_seq, data_size, notes_size, _, _, magic = _HEADER.unpack_from(first)
    if tag != b"PYRO" or version != protocol.PROTOCOL_VERSION or magic != protocol._magic_number:
        raise errors.ProtocolError("invalid message or protocol version")
    total = _SIZE + data_size + notes_size
    if data_size + notes_size > config.MAX_MESSAGE_SIZE:
        raise errors.ProtocolError(f"message too large ({data_size + notes_size}, max={config.MAX_MESSAGE_SIZE})")
    if kind != _RESULT:
        raise errors.ProtocolError(f"invalid msg type {kind} received (expected: {_RESULT})")
    if len(first) < total:
        whole = bytearray(total)
        whole[:len(first)] = first
        view = memoryview(whole)
        got = len(first)
        while got < total:
            n = sock.recv_into(view[got:])
            if not n:
                raise errors.ConnectionClosedError("receiving: connection lost")
            got += n
        message = view
    else:
        message = memoryview(first)
    if got_seq != seq:
        raise errors.ProtocolError(f"invoke: reply sequence out of sync, got {got_seq} expected {seq}")
    if notes_size:
        try:
            current_context.response_annotations = {key: bytes(value) for key, value in read_annotations(
                message[_SIZE:_SIZE + notes_size], notes_size).items()}
        except FrameError as err:
            raise errors.ProtocolError(f"a malformed reply: {err}") from None
    payload = message[_SIZE + notes_size:total]
    if serializer != _MARSHAL:
        raise errors.SerializeError(f"invalid serializer in response: {serializer}")
    if flags & (_EXCEPTION | _STREAM):
        if flags & _STREAM:
            raise errors.ProtocolError("the daemon answered with a stream, which this call did not ask for")
        raise RemoteRaised(serializers.serializers_by_id[_MARSHAL].loads(payload))
    return marshal.loads(payload)


# the server end

def enter(conn: Any, seq: int, flags: int, serializer_id: int, notes: dict[str, Any], corr: bytes | None = None) -> None:
    """Pyro5's per-request ``current_context``, as its ``handleRequest`` sets it (services, the servant and
    the daemon read it): the connection, its address, the message's fields and annotations."""
    ctx = current_context
    ctx.client = conn
    ctx.client_sock_addr = conn.address
    ctx.seq = seq
    ctx.annotations = notes
    ctx.msg_flags = flags
    ctx.serializer_id = serializer_id
    ctx.correlation_id = uuid.UUID(bytes=corr) if corr is not None else None
    ctx.response_annotations = {}


def serve(daemon: Any, conn: Any, header: Any, raw: bytes, notes: dict[str, bytes]) -> bool:
    """Answer one call on the lane; False (nothing done, nothing sent) when Pyro5's own path must.
    ``notes``: its annotations, as ``core.frames.check_body`` read them.

    ``daemon.lane_target(obj, method, vargs, kwargs)`` says what the call runs (a callable, its
    positional and keyword arguments), or None for anything the lane leaves to Pyro5.
    """
    target_of = getattr(daemon, "lane_target", None)
    if target_of is None or header.msg_type != _INVOKE or header.serializer_id != _MARSHAL or header.flags & ~_CORR:
        return False
    view = memoryview(raw)
    try:
        obj_id, method, vargs, kwargs = marshal.loads(view[_SIZE + header.annotations_size:])
    except Exception:  # noqa: BLE001 - not a call tuple: Pyro5's path answers it as it always has
        return False
    if type(vargs) not in (list, tuple) or type(kwargs) is not dict or type(method) is not str:
        return False
    found = target_of(daemon.objectsById.get(obj_id), method, vargs, kwargs)
    if found is None:
        return False
    run, args, keywords = found
    corr = bytes(view[20:36]) if header.flags & _CORR else None
    enter(conn, header.seq, header.flags, _MARSHAL, notes, corr)
    ctx = current_context
    try:
        result = run(*args, **keywords)
        try:
            data = marshal.dumps(result)
        except ValueError:  # a value only Pyro5's converting serializer can write
            data = serializers.serializers_by_id[_MARSHAL].dumps(result)
    except Exception as err:  # noqa: BLE001 - answered to the caller, as Pyro5's handleRequest does
        daemon._sendExceptionResponse(conn, header.seq, _MARSHAL, err,
                                      errors.format_traceback(detailed=config.DETAILED_TRACEBACK))
        return True
    answer_notes = chunks(ctx.response_annotations) if ctx.response_annotations else b""
    ctx.response_annotations = {}
    reply = _HEADER.pack(b"PYRO", protocol.PROTOCOL_VERSION, _RESULT, _MARSHAL, _CORR if corr else 0, header.seq,
                         len(data), len(answer_notes), corr or _NO_CORRELATION, 0, protocol._magic_number)
    conn.send(reply + answer_notes + data if len(data) <= _GATHER else reply + answer_notes)
    if len(data) > _GATHER:
        conn.send(data)
    return True
