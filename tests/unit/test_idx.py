import struct

import numpy as np
import pytest

from app.mnist.idx import IdxFormatError, parse_idx


def idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_parses_unsigned_byte_images_with_declared_shape():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    parsed = parse_idx(idx_bytes(images, 0x08))
    assert parsed.shape == (2, 3, 4)
    np.testing.assert_array_equal(parsed, images)


def test_parses_big_endian_int32_labels():
    labels = np.array([1, -2, 300000], dtype=np.int32)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels, 0x0C)), labels)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic"),
        (b"\x00\x00\x42\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX data type"),
        (b"\x00\x00\x08\x00", "zero dimensions"),
        (b"\x00\x00\x08\x02" + struct.pack(">I", 1), "ends inside the dimension header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x01", "5 bytes"),
    ],
)
def test_rejects_malformed_files_with_reason(data, message):
    with pytest.raises(IdxFormatError, match=message):
        parse_idx(data)
