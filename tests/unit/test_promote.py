"""Build once, promote: `invoke deploy --env=production --release ID` (mnist_deploy/deploy.py `promoted`)."""

from __future__ import annotations

import json

import pytest

from mnist_deploy import deploy, images
from mnist_deploy.errors import DeployError

COMMIT, MODEL = "a" * 12, "b" * 64  # low-entropy stand-ins: real shas look like secrets to detect-secrets
SOURCE = {
    "id": "0123456789ab",
    "env": "staging",
    "git_sha": COMMIT,
    "image_tag": f"{COMMIT}-{MODEL[:12]}",
    "model_version": MODEL,
    "images": [{"service": "backend", "ref": f"mnist-backend:{COMMIT}-{MODEL[:12]}", "identity": "sha256:1"}],
    "gate_thresholds": {"raw": 0.968, "drawn": 0.934},
}


@pytest.fixture
def controller(tmp_path, monkeypatch):
    """A controller that assembled SOURCE for staging, whose engine holds its images, at its commit."""
    monkeypatch.setattr(deploy, "RELEASES", tmp_path)
    (tmp_path / "0123456789ab.json").write_text(json.dumps(SOURCE))
    monkeypatch.setattr(images, "git_sha", lambda: COMMIT)
    monkeypatch.setattr(images, "image_exists", lambda ref: True)
    monkeypatch.setattr(images, "image_identity", lambda ref: {"identity": "sha256:1"})
    monkeypatch.setattr(deploy, "promote_from", lambda env: "staging")
    described = []
    monkeypatch.setattr(deploy, "describe", lambda env, tag, model, **extra: described.append((env, tag, extra)))
    return described


def test_a_release_staging_ran_is_promoted_with_its_own_images(controller, monkeypatch):
    monkeypatch.setattr(deploy, "ran_everywhere", lambda env, release: [])
    deploy.promoted("production", "0123456789ab")
    [(env, tag, extra)] = controller
    assert (env, tag) == ("production", SOURCE["image_tag"])
    assert extra == {
        "promoted_from": "0123456789ab",
        "note": "promoted from staging release 0123456789ab",
        "images_of": SOURCE["images"],  # as they were built: not inspected again
        "gate_thresholds": SOURCE["gate_thresholds"],  # the same model, judged by the same record
    }


def test_a_release_staging_never_ran_is_refused_unless_a_reason_is_given(controller, monkeypatch):
    monkeypatch.setattr(deploy, "ran_everywhere", lambda env, release: ["web-2"])
    with pytest.raises(DeployError, match="web-2 never ran it.*--force-reason"):
        deploy.promoted("production", "0123456789ab")
    assert controller == []
    deploy.promoted("production", "0123456789ab", reason="hotfix, staging is down")
    [(_, _, extra)] = controller
    assert extra["note"].endswith("forced: hotfix, staging is down (web-2 never ran it)")


def test_a_promotion_never_rebuilds_and_needs_the_releases_commit(controller, monkeypatch):
    monkeypatch.setattr(deploy, "ran_everywhere", lambda env, release: [])
    monkeypatch.setattr(images, "image_identity", lambda ref: {"identity": "sha256:rebuilt"})
    with pytest.raises(DeployError, match="not on this engine as it was built.*never rebuilt"):
        deploy.promoted("production", "0123456789ab")
    monkeypatch.setattr(images, "git_sha", lambda: "c" * 12)
    with pytest.raises(DeployError, match=f"built at commit {COMMIT}.*git checkout {COMMIT}"):
        deploy.promoted("production", "0123456789ab")
    with pytest.raises(DeployError, match="was not assembled on this controller"):
        deploy.promoted("production", "f" * 12)
    assert controller == []
