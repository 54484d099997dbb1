"""mnist.deploy's image archives: only the layers a host lacks, compressed, without a host or an engine."""

import gzip
import hashlib
import io
import json
import tarfile

import pytest
from ansible_collections.mnist.deploy.plugins.filter.releases import made_on_controller, ship_plan
from ansible_collections.mnist.deploy.plugins.module_utils.archive import archive_name, cut_archive, reference_name

BASE, MODEL = "sha256:" + "a" * 64, "sha256:" + "b" * 64
IMAGE_ID = "sha256:" + "c" * 64


def _add(archive, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def saved_archive(path, layer_paths=("base/layer.tar", "model/layer.tar"), diff_ids=(BASE, MODEL), links=()):
    """A `docker save` archive (legacy layout by default: manifest.json, the image's config, one file per layer;
    LINKS: (path, target) symlinks, as a legacy export links a layer it holds twice)."""
    with tarfile.open(path, "w") as archive:
        _add(
            archive,
            "manifest.json",
            json.dumps([{"Config": "c.json", "RepoTags": ["mnist-backend:x"], "Layers": list(layer_paths)}]).encode(),
        )
        _add(archive, "c.json", CONFIG(diff_ids))
        for layer_path in layer_paths:
            if layer_path not in dict(links):
                _add(archive, layer_path, layer_data(layer_path))
        for name, target in links:
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, target
            archive.addfile(link)
    return path


def CONFIG(diff_ids):
    return json.dumps({"rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}).encode()


def layer_data(layer_path):
    return layer_path.encode() * 1000


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def members(path):
    with tarfile.open(path) as archive:
        return {member.name: archive.extractfile(member).read() for member in archive if member.isfile()}


def test_an_archive_cut_for_a_host_leaves_out_the_layers_it_holds_and_is_compressed(tmp_path):
    source = saved_archive(tmp_path / "full.tar")
    dest = tmp_path / "cut.tar.gz"
    result = cut_archive(str(source), str(dest), [BASE], compress=True)
    files = members(dest)
    config = "blobs/sha256/" + sha256(CONFIG((BASE, MODEL)))[7:]
    assert files[f"blobs/sha256/{MODEL[7:]}"] == layer_data("model/layer.tar")
    assert f"blobs/sha256/{BASE[7:]}" not in files
    # Docker's layout, for the classic store: a held layer's file is named but absent.
    assert json.loads(files["manifest.json"]) == [
        {
            "Config": config,
            "RepoTags": ["mnist-backend:x"],
            "Layers": [f"blobs/sha256/{BASE[7:]}", f"blobs/sha256/{MODEL[7:]}"],
        }
    ]
    # The OCI layout, for the containerd store: every layer by digest and size, held or not, under the image's name.
    [entry] = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"] == {
        "io.containerd.image.name": "docker.io/library/mnist-backend:x",
        "org.opencontainers.image.ref.name": "x",
    }
    manifest = files["blobs/sha256/" + entry["digest"][7:]]
    assert sha256(manifest) == entry["digest"] and len(manifest) == entry["size"]
    manifest = json.loads(manifest)
    assert manifest["config"]["digest"] == "sha256:" + config.rpartition("/")[2]
    assert [(layer["digest"], layer["size"], layer["mediaType"]) for layer in manifest["layers"]] == [
        (BASE, len(layer_data("base/layer.tar")), "application/vnd.oci.image.layer.v1.tar"),
        (MODEL, len(layer_data("model/layer.tar")), "application/vnd.oci.image.layer.v1.tar"),
    ]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    assert result == {"left_out": 1, "bytes": dest.stat().st_size}
    assert not (tmp_path / "cut.tar.gz.part").exists()


def oci_manifest(files):
    """The OCI manifest of a cut archive's one image (FILES: its members)."""
    [entry] = json.loads(files["index.json"])["manifests"]
    return json.loads(files["blobs/sha256/" + entry["digest"][7:]])


def test_a_layer_a_legacy_export_links_is_read_through_its_link(tmp_path):
    source = saved_archive(tmp_path / "full.tar", links=[("model/layer.tar", "../base/layer.tar")])
    cut_archive(str(source), str(tmp_path / "cut.tar"), [], compress=False)
    files = members(tmp_path / "cut.tar")
    assert [layer["size"] for layer in oci_manifest(files)["layers"]] == [len(layer_data("base/layer.tar"))] * 2
    assert files[f"blobs/sha256/{MODEL[7:]}"] == layer_data("base/layer.tar")


def test_an_oci_export_keeps_its_blobs_digests_and_their_compression(tmp_path):
    """Docker 25+ saves blobs/sha256/<digest>; on a containerd-store controller a layer blob may be gzipped, its
    digest then not its diff ID."""
    zipped = gzip.compress(b"model layer")
    model_blob = "blobs/sha256/" + sha256(zipped)[7:]
    source = tmp_path / "full.tar"
    with tarfile.open(source, "w") as archive:
        _add(archive, "manifest.json", json.dumps([{"Config": "blobs/sha256/cfg", "Layers": [model_blob]}]).encode())
        _add(archive, "blobs/sha256/cfg", CONFIG((MODEL,)))
        _add(archive, model_blob, zipped)
    cut_archive(str(source), str(tmp_path / "cut.tar"), [MODEL], compress=False)
    files = members(tmp_path / "cut.tar")
    [entry] = json.loads(files["index.json"])["manifests"]
    assert "annotations" not in entry  # an image saved without a name
    [layer] = oci_manifest(files)["layers"]
    assert layer == {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": sha256(zipped),
        "size": len(zipped),
    }
    assert model_blob not in files


def test_an_image_name_is_the_one_the_containerd_store_gives_it():
    assert reference_name("mnist-backend:x") == "docker.io/library/mnist-backend:x"
    assert reference_name("team/mnist-backend:x") == "docker.io/team/mnist-backend:x"
    assert reference_name("registry.example:5000/mnist-backend:x") == "registry.example:5000/mnist-backend:x"
    assert reference_name("localhost/mnist:x") == "localhost/mnist:x"


def test_an_archive_with_nothing_held_and_no_compression_is_the_export_itself(tmp_path):
    source = saved_archive(tmp_path / "full.tar")
    assert cut_archive(str(source), str(source), [], compress=False) == {"left_out": 0, "bytes": source.stat().st_size}


def test_an_archive_whose_layer_files_do_not_match_its_layers_is_refused(tmp_path):
    source = saved_archive(tmp_path / "full.tar", diff_ids=(BASE,))
    with pytest.raises(ValueError, match="2 layer files for 1 layers"):
        cut_archive(str(source), str(tmp_path / "cut.tar"), [BASE], compress=False)
    assert not (tmp_path / "cut.tar").exists()


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
    """On either image store: the archive carries both layouts."""
    [backend] = ship_plan(RELEASE, HOST)
    assert backend["ref"] == "mnist-backend:new" and backend["skip"] == [BASE]
    assert backend["source"] == "cccccccccccc.tar" and backend["archive"] == archive_name(IMAGE_ID, [BASE], True)


def test_a_first_deploy_ships_each_layer_once_with_the_first_image_that_has_it():
    assert [(image["ref"], image["skip"]) for image in ship_plan(RELEASE, [])] == [
        ("mnist-backend:new", []),
        ("mnist-proxy:r1", [BASE]),  # loaded after the backend, whose archive carries the base layer
    ]


def test_a_layer_held_over_other_layers_is_shipped():
    """The classic store reuses a layer only with the same layers beneath it (its chain)."""
    other_base = [{"Id": "sha256:" + "9" * 64, "RootFS": {"Layers": ["sha256:" + "8" * 64, MODEL]}}]
    [backend] = ship_plan(RELEASE[:1], other_base)
    assert backend["skip"] == [] and not backend["archive"].count("-")


def test_the_plan_says_which_layers_of_an_image_to_ship_the_host_holds():
    from ansible_collections.mnist.deploy.plugins.filter.releases import change_plan

    release = {"id": "0123456789ab", "images": RELEASE, "files": {}}
    plan = change_plan({}, release, {}, HOST, layers=True)
    assert [(image["service"], image["skip"]) for image in plan["ship"]] == [("backend", [BASE])]
    ids_only = [{"Id": image["Id"]} for image in HOST]  # no layers known: nothing to leave out
    assert change_plan({}, release, {}, ids_only)["ship"] == [RELEASE[0]]


def test_a_deploy_exports_into_its_cache_and_removes_what_it_made():
    [backend] = ship_plan(RELEASE, HOST, cache="/c")
    assert backend["export"] and backend["cut"]
    assert (backend["source_path"], backend["archive_path"]) == ("/c/cccccccccccc.tar", f"/c/{backend['archive']}")
    assert made_on_controller([backend], "/c") == sorted(["/c/cccccccccccc.tar", f"/c/{backend['archive']}"])


def test_a_release_bundle_is_shipped_from_and_never_removed():
    """A bastion with no engine: the bundle's archives are the sources; only the cut archives are the deploy's."""
    [cut] = ship_plan(RELEASE, HOST, cache="/c", archives="/bundle/images")
    assert not cut["export"] and cut["source_path"] == "/bundle/images/cccccccccccc.tar"
    assert made_on_controller([cut], "/c") == [f"/c/{cut['archive']}"]
    whole, _proxy = ship_plan(RELEASE, [], compress=False, cache="/c", archives="/bundle/images")
    assert not whole["cut"] and whole["archive_path"] == "/bundle/images/cccccccccccc.tar"
    assert made_on_controller([whole], "/c") == []


def test_an_archive_cut_for_a_host_that_does_not_load_is_followed_by_the_whole_one():
    """A containerd store that holds the layers left out as other blobs lacks what the cut archive refers to."""
    from ansible_collections.mnist.deploy.plugins.filter.releases import load_failed, to_ship_whole

    backend, proxy = ship_plan(RELEASE, [], cache="/c")  # a first deploy: the proxy's base comes with the backend
    # docker_image_load's results: a load names what it loaded; one that did not says why, and once the task's
    # failed_when has let a cut archive's failure through, its `failed` is false.
    worked = {"changed": True, "image_names": ["mnist-proxy:r1"]}
    did_not = {"failed": True, "msg": "Detected no loaded images. Archive potentially corrupt?", "image_names": []}
    assert load_failed(did_not, backend) and not load_failed(did_not, proxy)
    assert not load_failed(worked, backend)
    results = [{**worked, "item": backend}, {**did_not, "failed": False, "item": proxy}]
    assert to_ship_whole(results) == [
        {**proxy, "skip": [], "archive": "dddddddddddd.tar", "archive_path": "/c/dddddddddddd.tar"}
    ]
    assert to_ship_whole([{**worked, "item": proxy}]) == []
