"""numpy arrays, numpy scalars and per-value errors on the wire.

No Pyro5 serializer carries numpy types, so values are wrapped in tagged
dicts before they reach Pyro5 and unwrapped after. An exception in place of a
value (a property that failed to read) travels as a tagged dict too and comes
back as a ``PyroLabError`` carrying the remote type and message. Nothing is registered in
Pyro5's process-wide tables. With the marshal serializer (what our proxies use)
array bytes travel raw; a plain Pyro5 client on serpent sees base64 instead,
which ``decode`` accepts too.
"""

from __future__ import annotations

import array
import base64
from typing import Any, Literal

import numpy as np

from pyrolab_jupyter.core import errors
from pyrolab_jupyter.core.bulk import BULK_MIN, BulkSide

__all__ = ["REREAD", "decode", "encode", "pushed"]

_TAG = "__pyrolab__"
_MAX_ERROR_TEXT = 2000  # an error's message from the network is kept this short
_PLAIN = (str, int, float, bool, bytes, type(None))


def _descr(dtype: np.dtype[Any]) -> Any:
    return np.lib.format.dtype_to_descr(dtype)


def _encode_array(arr: np.ndarray, bulk: BulkSide | None) -> dict[str, Any]:
    if arr.dtype.hasobject:
        return {_TAG: "object-array", "shape": list(arr.shape), "items": [encode(x, bulk) for x in arr.ravel()]}
    if bulk is not None and arr.nbytes >= BULK_MIN:
        ticket = bulk.put(arr)
        if ticket is not None:
            return {_TAG: "bulk", "descr": _descr(arr.dtype), "shape": list(arr.shape), **ticket}
    fortran = arr.flags.f_contiguous and not arr.flags.c_contiguous
    order: Literal["C", "F"] = "F" if fortran else "C"
    return {
        _TAG: "ndarray",
        "dtype": _descr(arr.dtype),
        "shape": list(arr.shape),
        "order": order,
        "data": arr.tobytes(order=order),
    }


def _bytes(data: Any) -> bytes:
    if isinstance(data, dict) and data.get("encoding") == "base64":  # serpent's form
        return base64.b64decode(data["data"])
    return bytes(data)


def _decode_tagged(value: dict[str, Any], bulk: BulkSide | None) -> Any:
    kind = value[_TAG]
    if kind == "bulk":
        if bulk is None:
            raise ValueError("an array was sent out of band, but this side has no bulk channel")
        return bulk.get({**value, "descr": _fix_descr(value["descr"])})
    if kind == "ndarray":
        dtype = np.lib.format.descr_to_dtype(_fix_descr(value["dtype"]))
        flat = np.frombuffer(_bytes(value["data"]), dtype=dtype)
        return flat.reshape(value["shape"], order=value["order"]).copy(order=value["order"])
    if kind == "scalar":
        dtype = np.lib.format.descr_to_dtype(_fix_descr(value["dtype"]))
        return np.frombuffer(_bytes(value["data"]), dtype=dtype)[0]
    if kind == "object-array":
        arr = np.empty(len(value["items"]), dtype=object)
        arr[:] = [decode(x, bulk) for x in value["items"]]
        return arr.reshape(value["shape"])
    if kind == "tuple":
        return tuple(decode(x, bulk) for x in value["items"])
    if kind == "error":
        return _decode_error(value)
    if kind == "reread":
        return REREAD
    raise ValueError(f"unknown wire tag {kind!r}")


def _encode_error(err: BaseException) -> dict[str, Any]:
    kind = type(err)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(err, errors.RemoteError) and err.remote_type:
        name = err.remote_type
    return {_TAG: "error", "type": name, "message": str(err)[:_MAX_ERROR_TEXT]}


def _decode_error(value: dict[str, Any]) -> errors.PyroLabError:
    """Our own error types come back as themselves; anything else as ``RemoteError`` naming its type."""
    name = str(value.get("type", "Exception"))[:200]
    message = str(value.get("message", ""))[:_MAX_ERROR_TEXT]
    short = name.rsplit(".", 1)[-1]
    own = getattr(errors, short, None) if name.startswith(errors.__name__ + ".") else None
    if isinstance(own, type) and issubclass(own, errors.PyroLabError) and short in errors.__all__:
        err: errors.PyroLabError = own(message)
    else:
        err = errors.RemoteError(f"{short}: {message}")
    err.remote_type = name  # type: ignore[attr-defined]
    return err


def _fix_descr(descr: Any) -> Any:
    """Structured dtype descrs lose their tuples on the wire (lists come back)."""
    if isinstance(descr, list):
        return [tuple(_fix_descr(x) if isinstance(x, list) else x for x in field) for field in descr]
    return descr


def encode(value: Any, bulk: BulkSide | None = None) -> Any:
    """Wrap numpy values (also inside lists, tuples and dicts) for the wire; with ``bulk``, arrays of
    ``BULK_MIN`` bytes or more go out of band (``core.bulk``) and a ticket takes their place."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is np.ndarray:
        return _encode_array(value, bulk)
    if isinstance(value, np.generic):
        return {_TAG: "scalar", "dtype": _descr(value.dtype), "data": value.tobytes()}
    if kind is list:
        return [encode(x, bulk) for x in value]
    if kind is tuple:
        return {_TAG: "tuple", "items": [encode(x, bulk) for x in value]}
    if kind is dict:
        return {k: encode(v, bulk) for k, v in value.items()}
    if isinstance(value, np.ndarray):  # subclasses (masked arrays, matrices) go as plain arrays
        return _encode_array(np.asarray(value), bulk)
    if isinstance(value, BaseException):
        return _encode_error(value)
    if isinstance(value, array.array):  # as Pyro5's serializers send it (marshal alone would send its raw bytes)
        return value.tounicode() if value.typecode == "u" else value.tolist()
    return value


class _Reread:
    """A pushed value too large to push: its subscriber reads it again, through the bulk path."""

    def __repr__(self) -> str:
        return "REREAD"


REREAD = _Reread()


def pushed(value: Any) -> Any:
    """``encode`` for a subscriber: an array of ``BULK_MIN`` bytes or more is not pushed (a subscriber's
    receiver has no bulk path, and each subscriber would get its own copy); a marker that decodes to
    ``REREAD`` says it changed, and the subscriber reads it (out of band) itself."""
    if isinstance(value, np.ndarray) and value.nbytes >= BULK_MIN and not value.dtype.hasobject:
        return {_TAG: "reread"}
    return encode(value)


def decode(value: Any, bulk: BulkSide | None = None) -> Any:
    """Undo ``encode``; leaves everything else as it is. Out-of-band arrays are received through ``bulk``."""
    kind = type(value)
    if kind is dict:
        if _TAG in value:
            return _decode_tagged(value, bulk)
        return {k: decode(v, bulk) for k, v in value.items()}
    if kind is list:
        return [decode(x, bulk) for x in value]
    return value
