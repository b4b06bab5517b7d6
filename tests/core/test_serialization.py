"""numpy values through encode/decode and Pyro5's own serializers (no network)."""

from __future__ import annotations

import numpy as np
import pytest
from Pyro5.serializers import MarshalSerializer, SerpentSerializer

from pyrolab_jupyter.core.serialization import decode, encode

VALUES = [
    np.arange(12, dtype=np.int16).reshape(3, 4),
    np.asfortranarray(np.arange(15, dtype=np.float64).reshape(3, 5)),
    np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
    np.array(["ab", "c"]),
    np.zeros((2, 0)),
    np.arange(6)[::2],
    np.array([1, None], dtype=object),
]


@pytest.mark.parametrize("serializer", [MarshalSerializer(), SerpentSerializer()], ids=["marshal", "serpent"])
@pytest.mark.parametrize("value", VALUES, ids=lambda v: f"{v.dtype}-{v.shape}")
def test_arrays_round_trip_exactly(serializer, value):
    back = decode(serializer.loads(serializer.dumps(encode(value))))
    assert back.dtype == value.dtype and back.shape == value.shape
    assert back.flags.f_contiguous == value.flags.f_contiguous or value.ndim < 2
    if value.dtype.hasobject:
        assert list(back) == list(value)
    else:
        np.testing.assert_array_equal(back, value)


@pytest.mark.parametrize("value", [np.float32(1.5), np.complex128(1 + 2j), np.bool_(False), np.int64(-7)])
def test_scalars_keep_their_type(value):
    back = decode(MarshalSerializer().loads(MarshalSerializer().dumps(encode(value))))
    assert type(back) is type(value) and back == value


def test_plain_values_pass_untouched():
    value = {"a": [1, 2.5, "x", None, b"raw"], "t": (1, 2)}
    assert decode(encode(value)) == value


def test_an_error_in_place_of_a_value_comes_back_as_a_pyrolab_error():
    from pyrolab_jupyter.errors import InvalidArgument, PyroLabError, RemoteError

    back = decode(MarshalSerializer().loads(MarshalSerializer().dumps(encode({"v": KeyError("ch 7")}))))["v"]
    assert isinstance(back, RemoteError) and back.remote_type == "KeyError" and "ch 7" in str(back)
    own = decode(encode(InvalidArgument("mw=99 is above the maximum 50")))
    assert type(own) is InvalidArgument and "maximum 50" in str(own)
    forged = decode({"__pyrolab__": "error", "type": "os.system", "message": "x" * 10**6})
    assert isinstance(forged, PyroLabError) and len(str(forged)) < 3000  # bounded, and never imports a type
