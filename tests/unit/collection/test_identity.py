"""An image's identity holds on both image stores: module_utils/identity.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.mnist.deploy.plugins.filter.releases import images_missing, images_to_tag, local_image_ids
from ansible_collections.mnist.deploy.plugins.module_utils.identity import identity

BASE, MODEL = "sha256:" + "a" * 64, "sha256:" + "b" * 64
CONFIG = {
    "Cmd": ["uvicorn", "app.main:app"],
    "Env": ["PATH=/usr/bin"],
    "ExposedPorts": {"8000/tcp": {}},
    "Healthcheck": {"Test": ["CMD", "python3", "-m", "app.health"], "Interval": 2000000000},
    "Labels": {"io.mnist.model": "abc"},
    "User": "10001",
    "WorkingDir": "/app",
}


def inspect(image_id, layers=(BASE, MODEL), tags=(), **config):
    """What `docker image inspect` (or docker_image_info) reports for an image."""
    return {
        "Id": image_id,
        "RepoTags": list(tags),
        "Os": "linux",
        "Architecture": "amd64",
        "Config": {**CONFIG, **config},
        "RootFS": {"Type": "layers", "Layers": list(layers)},
    }


CLASSIC = inspect("sha256:fb64", tags=["mnist-backend:b"])
# The same archive loaded on the containerd store: another id, nulls where the classic store has empty values.
CONTAINERD = {
    **inspect("sha256:7ae7", tags=["mnist-backend:b"]),
    "Config": {**CONFIG, "Entrypoint": None, "Volumes": {}},
}


def test_an_image_keeps_its_identity_on_the_containerd_store_and_differs_by_content():
    assert identity(CLASSIC) == identity(CONTAINERD)
    assert identity(CLASSIC).startswith("sha256:") and identity(CLASSIC) != CLASSIC["Id"]
    assert identity(inspect("sha256:1", layers=(BASE,))) != identity(CLASSIC)  # another layer
    assert identity(inspect("sha256:1", Cmd=["sleep"])) != identity(CLASSIC)  # same layers, another command
    assert identity({**CLASSIC, "Architecture": "arm64"}) != identity(CLASSIC)  # another platform
    with pytest.raises(ValueError, match="no layers"):
        identity({"Id": "sha256:1", "Config": CONFIG})


RELEASE = [
    {"service": "backend", "ref": "mnist-backend:b", "id": "sha256:fb64", "identity": identity(CLASSIC)},
    {"service": "proxy", "ref": "mnist-proxy:r", "id": "sha256:9999", "identity": identity(inspect("x", (BASE,)))},
]


def test_a_host_on_the_containerd_store_holds_the_image_under_its_own_id():
    host = [{**CONTAINERD, "RepoTags": []}]
    assert images_missing(RELEASE, host) == [RELEASE[1]]
    # Tagged by the id the host knows it by, not the controller's.
    assert images_to_tag(RELEASE, host) == [{**RELEASE[0], "local": "sha256:7ae7"}]
    assert images_to_tag(RELEASE, [CONTAINERD]) == []  # already named as the compose file names it
    assert local_image_ids([RELEASE[0]["identity"], RELEASE[1]["identity"]], host) == ["sha256:7ae7"]


def test_a_record_written_before_identities_matches_by_image_id():
    old = [{"service": "backend", "ref": "mnist-backend:a", "id": "sha256:fb64"}]
    assert images_missing(old, [CLASSIC]) == []
    assert images_missing(old, [CONTAINERD]) == old  # only its id is known: on another store it must be shipped
    assert images_to_tag(old, [CLASSIC]) == [{**old[0], "local": "sha256:fb64"}]
    assert local_image_ids(["sha256:fb64"], [CLASSIC]) == ["sha256:fb64"]


DATA = Path(__file__).with_name("data")


def test_the_same_archive_loaded_on_both_stores_has_two_ids_and_one_identity():
    """`docker image inspect` of the proxy image on the controller (Docker 20.10, classic store) and after `docker
    save` → `docker load` on a sandbox trixie host (Docker 26.1.5, containerd store), as they printed them, trimmed
    to the fields an identity or a host index reads."""
    (classic,) = json.loads((DATA / "proxy-inspect-classic.json").read_text())
    (containerd,) = json.loads((DATA / "proxy-inspect-containerd.json").read_text())
    assert classic["Id"] != containerd["Id"]
    assert identity(classic) == identity(containerd)


def test_a_host_of_another_machine_is_refused_naming_the_platforms():
    from ansible_collections.mnist.deploy.plugins.filter.releases import platform_problem
    from ansible_collections.mnist.deploy.plugins.module_utils.identity import platform

    images = [{**image, "platform": platform(CLASSIC)} for image in RELEASE]
    assert images[0]["platform"] == "linux/amd64"
    assert platform_problem(images, {"OSType": "linux", "Architecture": "x86_64"}) == ""
    problem = platform_problem(images, {"OSType": "linux", "Architecture": "aarch64"})
    assert problem.startswith("the host's engine runs linux/arm64") and "backend (linux/amd64)" in problem
    assert platform_problem(RELEASE, {"OSType": "linux", "Architecture": "aarch64"}) == ""  # recorded before platforms
