"""The model store: `<root>/<version>/{model.onnx, metadata.json, *.png}` plus a `current` pointer.

A version is the sha256 of the ONNX bytes, so a version's contents can never change: registering the
same model again is a no-op, and a version folder is written once, atomically, and never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
CURRENT_FILE = "current"


class ModelStoreError(RuntimeError):
    """The store or a model in it is missing, inconsistent or would be overwritten."""


@dataclass(frozen=True)
class StoredModel:
    version: str
    path: Path
    onnx_bytes: bytes
    metadata: dict[str, Any]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def register(root: Path, onnx_bytes: bytes, metadata: dict[str, Any], artifacts: dict[str, bytes] | None = None) -> str:
    """Add a model to the store and return its version. `current` does not move: `promote` moves it."""
    version = sha256(onnx_bytes)
    if metadata.get("version") != version:
        raise ModelStoreError(f"metadata version {metadata.get('version')!r} is not the ONNX sha256 {version}")
    root.mkdir(parents=True, exist_ok=True)
    target = root / version
    if target.exists():
        existing = target / MODEL_FILE
        if not existing.is_file() or sha256(existing.read_bytes()) != version:
            raise ModelStoreError(f"{target} exists but does not hold model {version}; refusing to overwrite it")
    else:
        staging = Path(tempfile.mkdtemp(prefix=f".{version[:12]}-", dir=root))
        try:
            staging.chmod(0o755)  # mkdtemp makes it private; servers run as another user
            (staging / MODEL_FILE).write_bytes(onnx_bytes)
            (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
            for name, data in (artifacts or {}).items():
                if "/" in name or name in {MODEL_FILE, METADATA_FILE}:
                    raise ModelStoreError(f"invalid artifact name {name!r}")
                (staging / name).write_bytes(data)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return version


def set_current(root: Path, version: str) -> None:
    if not (root / version / MODEL_FILE).is_file():
        raise ModelStoreError(f"no model {version} in {root}")
    pointer = root / CURRENT_FILE
    partial = pointer.with_name(CURRENT_FILE + ".partial")
    partial.write_text(version + "\n")
    os.replace(partial, pointer)


def current_version(root: Path) -> str:
    pointer = root / CURRENT_FILE
    if not pointer.is_file():
        raise ModelStoreError(f"{pointer} does not exist: train a model (invoke train) or set the version explicitly")
    return pointer.read_text().strip()


def versions(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / MODEL_FILE).is_file()) if root.is_dir() else []


def resolve(root: Path, prefix: str) -> str:
    """The one version in the store that starts with PREFIX."""
    matches = [v for v in versions(root) if v.startswith(prefix.strip())] if prefix.strip() else []
    if len(matches) != 1:
        known = ", ".join(v[:12] for v in versions(root)) or "none"
        what = "no model" if not matches else f"{len(matches)} models"
        raise ModelStoreError(f"{what} in {root} match {prefix!r} (models: {known})")
    return matches[0]


def load(root: Path, version: str | None = None) -> StoredModel:
    """Read a model and check that its bytes are the version its folder and metadata claim."""
    version = version or current_version(root)
    path = root / version
    try:
        onnx_bytes = (path / MODEL_FILE).read_bytes()
        metadata = json.loads((path / METADATA_FILE).read_text())
    except FileNotFoundError as exc:
        raise ModelStoreError(f"model {version} is incomplete in {root}: {exc.filename} is missing") from exc
    except json.JSONDecodeError as exc:
        raise ModelStoreError(f"{path / METADATA_FILE} is not valid JSON: {exc}") from exc
    actual = sha256(onnx_bytes)
    if actual != version or metadata.get("version") != version:
        raise ModelStoreError(
            f"model {version} fails its integrity check: "
            f"ONNX sha256 is {actual}, metadata says {metadata.get('version')}"
        )
    return StoredModel(version=version, path=path, onnx_bytes=onnx_bytes, metadata=metadata)
