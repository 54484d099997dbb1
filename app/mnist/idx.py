"""Reading the IDX format the original MNIST files use (http://yann.lecun.com/exdb/mnist/ layout)."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IdxFormatError(ValueError):
    """The bytes are not a well-formed IDX file."""


def parse_idx(data: bytes) -> np.ndarray:
    """Parse the bytes of an IDX file into an array of the shape its header declares."""
    if len(data) < 4:
        raise IdxFormatError(f"file too short for an IDX header ({len(data)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise IdxFormatError(f"bad magic number: first two bytes are {zero:#06x}, expected 0x0000")
    if type_code not in _DTYPES:
        raise IdxFormatError(f"unknown IDX data type code {type_code:#04x}")
    if ndim == 0:
        raise IdxFormatError("IDX file declares zero dimensions")
    header_end = 4 + 4 * ndim
    if len(data) < header_end:
        raise IdxFormatError("file ends inside the dimension header")
    shape = struct.unpack(f">{ndim}I", data[4:header_end])
    dtype = _DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(data) - header_end
    if payload != expected:
        raise IdxFormatError(f"header declares shape {shape} ({expected} bytes) but {payload} bytes follow")
    return np.frombuffer(data, dtype=dtype, offset=header_end).reshape(shape).astype(dtype.newbyteorder("="))
