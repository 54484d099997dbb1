"""Image archives that carry only the layers a host lacks, compressed.

`docker save` writes every layer of an image. `docker load` on the classic image store skips a layer whose chain
the engine already has, without reading its file: an archive that leaves out the layers the host has loads into
the same image, with the same ID. So a new model moves its own layer (under 1 MB), not the 250 MB of Python
beneath it. The containerd image store imports an archive as content blobs and needs each one: a host on it gets
whole archives.

The layers a host has are the `RootFS.Layers` (diff IDs) of the images it holds (docker_image_info); an image's own
are listed in the release (mnist_deploy/deploy.py reads them on the controller). An archive is named by the image
and the layers it leaves out, so hosts that hold the same layers share one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile

CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"


def reuses_layers(host_info: dict) -> bool:
    """Whether the engine (docker_host_info's host_info) loads an archive that leaves out layers it has: the
    classic store does; the containerd store (`driver-type` io.containerd.snapshotter.v1) does not."""
    status = dict(pair for pair in (host_info.get("DriverStatus") or []) if len(pair) == 2)
    return status.get("driver-type") != CONTAINERD_SNAPSHOTTER


def held_layers(host_images: list) -> set:
    """The diff IDs of every layer of HOST_IMAGES (docker_image_info's images)."""
    return {layer for image in host_images for layer in ((image.get("RootFS") or {}).get("Layers") or [])}


def archive_name(image_id: str, skip: list, compress: bool) -> str:
    """The archive of IMAGE_ID without the layers SKIP: the same name for the same content."""
    name = image_id.removeprefix("sha256:")[:12]
    if skip:
        name += "-" + hashlib.sha256(json.dumps(sorted(skip)).encode()).hexdigest()[:12]
    return name + (".tar.gz" if compress else ".tar")


def ship_plan(
    missing: list, host_images: list, reuse: bool, compress: bool, cache: str = "", archives: str = ""
) -> list:
    """For each image the host lacks (MISSING: the release's {service, ref, id, layers}), what goes to it: the
    entry with `skip` (the layers the host holds, left out when REUSE), `archive` (what is copied) and `source`
    (the whole `docker save` archive it is cut from), and where they are on the controller: `source_path` (in
    ARCHIVES, a release bundle's folder, when the deploy has one, else exported into CACHE once per deploy:
    `export`), `archive_path` (the source itself when nothing is left out and nothing compressed, else cut into
    CACHE: `cut`)."""
    held = held_layers(host_images) if reuse else set()
    plan = []
    for image in missing:
        skip = sorted(set(image.get("layers") or []) & held)
        source, shipped = archive_name(image["id"], [], False), archive_name(image["id"], skip, compress)
        source_path = os.path.join(archives or cache, source)
        plan.append(
            {
                **image,
                "skip": skip,
                "archive": shipped,
                "source": source,
                "export": not archives,
                "cut": shipped != source,
                "source_path": source_path,
                "archive_path": source_path if shipped == source else os.path.join(cache, shipped),
            }
        )
    return plan


def made_on_controller(plan: list, cache: str) -> list:
    """The files PLAN's deploy made in CACHE (exports and cuts): what it removes once every host loaded them. A
    release bundle's archives are not the deploy's to remove."""
    made = {entry["source_path"] for entry in plan if entry["export"]} | {entry["archive_path"] for entry in plan}
    return sorted(path for path in made if os.path.dirname(path) == cache.rstrip("/"))


def _layer_paths(archive: tarfile.TarFile, skip: set) -> set:
    """The archive members holding the layers SKIP: manifest.json maps each image's layer files, in order, onto
    its config's diff IDs (legacy `<id>/layer.tar` and OCI `blobs/sha256/<digest>` alike)."""
    manifest = json.load(archive.extractfile("manifest.json"))
    paths = set()
    for entry in manifest:
        config = json.load(archive.extractfile(entry["Config"]))
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(entry["Layers"]):
            raise ValueError(f"{entry['Config']}: {len(entry['Layers'])} layer files for {len(diff_ids)} layers")
        paths.update(path for path, diff_id in zip(entry["Layers"], diff_ids, strict=True) if diff_id in skip)
    return paths


def cut_archive(source: str, dest: str, skip: list, compress: bool) -> dict:
    """Write DEST: SOURCE (a `docker save` archive) without the files of the layers SKIP, gzip-compressed (level
    1: the copy, not the CPU, is what is slow) when COMPRESS. Written beside DEST and renamed: a cut interrupted
    leaves no DEST. Returns {'left_out': layer files left out, 'bytes': DEST's size}."""
    if os.path.abspath(source) == os.path.abspath(dest):  # the whole archive, uncompressed: nothing to cut
        return {"left_out": 0, "bytes": os.path.getsize(dest)}
    temporary = f"{dest}.part"
    with tarfile.open(source) as archive:
        left_out = _layer_paths(archive, set(skip)) if skip else set()
        with open(temporary, "wb") as raw:
            out_file = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) if compress else raw
            with tarfile.open(fileobj=out_file, mode="w", format=tarfile.PAX_FORMAT) as out:
                for member in archive:
                    if member.name not in left_out:
                        out.addfile(member, archive.extractfile(member) if member.isfile() else None)
            if compress:
                out_file.close()
    os.replace(temporary, dest)
    return {"left_out": len(left_out), "bytes": os.path.getsize(dest)}
