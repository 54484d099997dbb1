"""Release bundles (mnist_deploy/bundle.py): a release and its image archives, deployed from a machine with no
engine (the bastion). The archives are checked against the release by identity, computed from their own config."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from mnist_deploy import bundle, deploy, images
from mnist_deploy.collection import archive, identity
from mnist_deploy.errors import DeployError

LAYERS = ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
CONFIG = {
    "os": "linux",
    "architecture": "amd64",
    "config": {"Cmd": ["serve"], "Env": ["A=1"]},
    "rootfs": {"diff_ids": LAYERS},
}
IDENTITY = identity.identity(
    {"Os": "linux", "Architecture": "amd64", "Config": CONFIG["config"], "RootFS": {"Layers": LAYERS}}
)
RELEASE = {
    "id": "0123456789ab",
    "env": "sandbox",
    "git_sha": "a" * 12,
    "image_tag": "a" * 12 + "-" + "b" * 12,
    "model_version": "b" * 64,
    "images": [{"service": "backend", "ref": "mnist-backend:x", "id": "sha256:" + "c" * 64, "identity": IDENTITY}],
}


def save(path: Path, config: dict) -> None:
    """A `docker save` archive of one image with CONFIG (its layer files left out: only the config is read)."""
    with tarfile.open(path, "w") as tar:
        for name, data in (
            ("manifest.json", [{"Config": "config.json", "RepoTags": ["mnist-backend:x"], "Layers": ["l1", "l2"]}]),
            ("config.json", config),
        ):
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def made(root: Path, config: dict = CONFIG) -> Path:
    folder = bundle.folder(RELEASE["id"], root)
    (folder / "images").mkdir(parents=True)
    save(bundle.archive_path(folder, RELEASE["images"][0]), config)
    (folder / bundle.RECORD).write_text(json.dumps(RELEASE))
    return folder


def test_an_archive_has_the_identity_its_image_has_on_an_engine(tmp_path: Path) -> None:
    save(tmp_path / "x.tar", CONFIG)
    assert bundle.archive_identity(tmp_path / "x.tar") == IDENTITY
    assert bundle.archive_path(tmp_path, RELEASE["images"][0]).name == archive.archive_name(
        "sha256:" + "c" * 64, [], False
    )


def test_a_bundle_loads_only_when_each_archive_holds_the_release_image(tmp_path: Path) -> None:
    assert bundle.load(RELEASE["id"], tmp_path) is None  # no bundle here
    folder = made(tmp_path)
    assert bundle.load(RELEASE["id"], tmp_path) == (RELEASE, folder)
    bundle.remove(RELEASE["id"], tmp_path)
    made(tmp_path, {**CONFIG, "config": {"Cmd": ["something else"]}})
    with pytest.raises(DeployError, match="backend: .* holds another image"):
        bundle.load(RELEASE["id"], tmp_path)
    bundle.archive_path(bundle.folder(RELEASE["id"], tmp_path), RELEASE["images"][0]).unlink()
    with pytest.raises(DeployError, match="backend: .* is missing"):
        bundle.load(RELEASE["id"], tmp_path)


def test_a_bundled_release_is_promoted_with_no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = made(tmp_path)
    monkeypatch.setattr(bundle, "load", lambda release_id: (RELEASE, folder))
    monkeypatch.setattr(deploy, "RELEASES", tmp_path / "none")
    monkeypatch.setattr(images, "git_sha", lambda: RELEASE["git_sha"])
    monkeypatch.setattr(images, "image_exists", lambda ref: pytest.fail("the engine was asked"))
    monkeypatch.setattr(deploy, "ran_everywhere", lambda env, release: [])
    monkeypatch.setattr(deploy, "promote_from", lambda env: "")
    monkeypatch.setattr(deploy, "describe", lambda env, tag, model, **extra: {"id": RELEASE["id"], **extra})
    release = deploy.promoted("sandbox", RELEASE["id"])
    assert release["archives"] == str(folder / "images") and release["images_of"] == RELEASE["images"]
