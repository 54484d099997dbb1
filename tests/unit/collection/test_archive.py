"""mnist.deploy's image archives: only the layers a host lacks, compressed, without a host or an engine."""

import io
import json
import tarfile

import pytest
from ansible_collections.mnist.deploy.plugins.filter.releases import made_on_controller, ship_plan
from ansible_collections.mnist.deploy.plugins.module_utils.archive import (
    archive_name,
    cut_archive,
    reuses_layers,
)

BASE, MODEL = "sha256:" + "a" * 64, "sha256:" + "b" * 64
IMAGE_ID = "sha256:" + "c" * 64
CLASSIC = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]]}
CONTAINERD = {"Driver": "overlayfs", "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]}


def _add(archive, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def saved_archive(path, layer_paths=("base/layer.tar", "model/layer.tar"), diff_ids=(BASE, MODEL)):
    """A `docker save` archive in the legacy layout: manifest.json, the image's config, one file per layer."""
    with tarfile.open(path, "w") as archive:
        _add(
            archive,
            "manifest.json",
            json.dumps([{"Config": "c.json", "RepoTags": ["mnist-backend:x"], "Layers": list(layer_paths)}]).encode(),
        )
        _add(archive, "c.json", json.dumps({"rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}).encode())
        for layer_path in layer_paths:
            _add(archive, layer_path, layer_path.encode() * 1000)
    return path


def test_an_archive_cut_for_a_host_leaves_out_the_layers_it_holds_and_is_compressed(tmp_path):
    source = saved_archive(tmp_path / "full.tar")
    dest = tmp_path / "cut.tar.gz"
    result = cut_archive(str(source), str(dest), [BASE], compress=True)
    with tarfile.open(dest, "r:gz") as cut:
        assert sorted(cut.getnames()) == ["c.json", "manifest.json", "model/layer.tar"]
        assert cut.extractfile("model/layer.tar").read() == b"model/layer.tar" * 1000
    assert result == {"left_out": 1, "bytes": dest.stat().st_size}
    assert not (tmp_path / "cut.tar.gz.part").exists()


def test_an_archive_with_nothing_held_and_no_compression_is_the_export_itself(tmp_path):
    source = saved_archive(tmp_path / "full.tar")
    assert cut_archive(str(source), str(source), [], compress=False) == {"left_out": 0, "bytes": source.stat().st_size}


def test_an_archive_whose_layer_files_do_not_match_its_layers_is_refused(tmp_path):
    source = saved_archive(tmp_path / "full.tar", diff_ids=(BASE,))
    with pytest.raises(ValueError, match="2 layer files for 1 layers"):
        cut_archive(str(source), str(tmp_path / "cut.tar"), [BASE], compress=False)


def test_only_the_classic_image_store_reuses_the_layers_a_host_holds():
    assert reuses_layers(CLASSIC) and reuses_layers({})
    assert not reuses_layers(CONTAINERD)


def test_hosts_that_hold_the_same_layers_share_one_archive_named_by_what_it_leaves_out():
    assert archive_name(IMAGE_ID, [], compress=False) == "cccccccccccc.tar"
    assert archive_name(IMAGE_ID, [MODEL, BASE], True) == archive_name(IMAGE_ID, [BASE, MODEL], True)
    assert archive_name(IMAGE_ID, [BASE], True) != archive_name(IMAGE_ID, [MODEL], True)
    assert archive_name(IMAGE_ID, [BASE], True).endswith(".tar.gz")


RELEASE = [
    {"service": "backend", "ref": "mnist-backend:new", "id": IMAGE_ID, "layers": [BASE, MODEL]},
    {"service": "proxy", "ref": "mnist-proxy:r1", "id": "sha256:" + "d" * 64, "layers": [BASE]},
]
HOST = [  # the previous release's backend: the same base layer, another model
    {"Id": "sha256:" + "e" * 64, "RootFS": {"Layers": [BASE, "sha256:" + "f" * 64]}},
    {"Id": "sha256:" + "d" * 64, "RootFS": {"Layers": [BASE]}},
]


def test_a_new_model_ships_only_its_own_layer_and_an_image_the_host_has_ships_nothing():
    [backend] = ship_plan(RELEASE, HOST, CLASSIC)
    assert backend["ref"] == "mnist-backend:new" and backend["skip"] == [BASE]
    assert backend["source"] == "cccccccccccc.tar" and backend["archive"] == archive_name(IMAGE_ID, [BASE], True)


def test_a_host_on_the_containerd_store_gets_whole_archives():
    [backend] = ship_plan(RELEASE, HOST, CONTAINERD, compress=False)
    assert backend["skip"] == [] and backend["archive"] == backend["source"] == "cccccccccccc.tar"


def test_a_first_deploy_ships_every_image_whole():
    assert [(image["ref"], image["skip"]) for image in ship_plan(RELEASE, [], CLASSIC)] == [
        ("mnist-backend:new", []),
        ("mnist-proxy:r1", []),
    ]


def test_the_plan_says_which_layers_of_an_image_to_ship_the_host_holds():
    from ansible_collections.mnist.deploy.plugins.filter.releases import change_plan

    release = {"id": "0123456789ab", "images": RELEASE, "files": {}}
    plan = change_plan({}, release, {}, HOST, CLASSIC)
    assert [(image["service"], image["skip"]) for image in plan["ship"]] == [("backend", [BASE])]
    ids_only = [{"Id": image["Id"]} for image in HOST]  # no layers known: nothing to leave out
    assert change_plan({}, release, {}, ids_only)["ship"] == [RELEASE[0]]


def test_a_deploy_exports_into_its_cache_and_removes_what_it_made():
    [backend] = ship_plan(RELEASE, HOST, CLASSIC, cache="/c")
    assert backend["export"] and backend["cut"]
    assert (backend["source_path"], backend["archive_path"]) == ("/c/cccccccccccc.tar", f"/c/{backend['archive']}")
    assert made_on_controller([backend], "/c") == sorted(["/c/cccccccccccc.tar", f"/c/{backend['archive']}"])


def test_a_release_bundle_is_shipped_from_and_never_removed():
    """A bastion with no engine: the bundle's archives are the sources; only the cut archives are the deploy's."""
    [classic] = ship_plan(RELEASE, HOST, CLASSIC, cache="/c", archives="/bundle/images")
    assert not classic["export"] and classic["source_path"] == "/bundle/images/cccccccccccc.tar"
    assert made_on_controller([classic], "/c") == [f"/c/{classic['archive']}"]
    [whole] = ship_plan(RELEASE, HOST, CONTAINERD, compress=False, cache="/c", archives="/bundle/images")
    assert not whole["cut"] and whole["archive_path"] == "/bundle/images/cccccccccccc.tar"
    assert made_on_controller([whole], "/c") == []
