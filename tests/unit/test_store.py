import json

import pytest

from app.mnist import store
from app.mnist.store import ModelStoreError


def metadata_for(onnx: bytes, **extra) -> dict:
    return {"version": store.sha256(onnx), **extra}


def test_register_writes_version_folder_and_set_current_points_at_it(tmp_path):
    onnx = b"model-a"
    version = store.register(tmp_path, onnx, metadata_for(onnx), {"curves.png": b"png"})
    assert version == store.sha256(onnx)
    assert (tmp_path / version / "curves.png").read_bytes() == b"png"
    assert not (tmp_path / store.CURRENT_FILE).exists()  # registering never moves current: promotion does
    store.set_current(tmp_path, version)
    assert store.current_version(tmp_path) == version
    assert store.load(tmp_path).onnx_bytes == onnx


def test_registering_the_same_model_again_never_rewrites_it(tmp_path):
    onnx = b"model-a"
    version = store.register(tmp_path, onnx, metadata_for(onnx, created="first"))
    store.set_current(tmp_path, version)
    store.register(tmp_path, b"model-b", metadata_for(b"model-b"))
    store.register(tmp_path, onnx, metadata_for(onnx, created="second"))
    assert json.loads((tmp_path / version / "metadata.json").read_text())["created"] == "first"
    assert store.current_version(tmp_path) == version
    assert store.versions(tmp_path) == sorted([version, store.sha256(b"model-b")])


def test_refuses_a_folder_that_holds_other_bytes_under_the_version(tmp_path):
    onnx = b"model-a"
    version = store.sha256(onnx)
    (tmp_path / version).mkdir()
    (tmp_path / version / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(ModelStoreError, match="refusing to overwrite"):
        store.register(tmp_path, onnx, metadata_for(onnx))
    assert (tmp_path / version / "model.onnx").read_bytes() == b"tampered"


def test_refuses_metadata_whose_version_is_not_the_onnx_hash(tmp_path):
    with pytest.raises(ModelStoreError, match="is not the ONNX sha256"):
        store.register(tmp_path, b"model-a", {"version": "abc"})
    assert store.versions(tmp_path) == []


def test_load_detects_tampered_model_bytes(tmp_path):
    version = store.register(tmp_path, b"model-a", metadata_for(b"model-a"))
    (tmp_path / version / "model.onnx").write_bytes(b"model-x")
    with pytest.raises(ModelStoreError, match="fails its integrity check"):
        store.load(tmp_path, version)


def test_missing_current_pointer_says_how_to_get_a_model(tmp_path):
    with pytest.raises(ModelStoreError, match="invoke train"):
        store.load(tmp_path)


def test_a_failed_registration_leaves_nothing_behind(tmp_path):
    with pytest.raises(ModelStoreError, match="invalid artifact name"):
        store.register(tmp_path, b"model-a", metadata_for(b"model-a"), {"../escape.png": b"x"})
    assert list(tmp_path.iterdir()) == []
