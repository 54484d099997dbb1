"""Image archives that carry only the layers a host lacks, compressed, on either Docker image store.

`docker save` writes every layer of an image. `docker load` on the classic image store skips a layer whose chain
the engine already has, without reading its file; the containerd image store (the default of a fresh Docker Engine
29) imports an archive's OCI layout as content blobs, and finds a blob the archive leaves out in its content store,
where a layer loaded from an uncompressed archive is kept under its diff ID (probed on the sandbox's Debian 13 host,
Docker 26.1.5: a new model's backend image arrived as 0.9 MB instead of 424 MB, same identity, and ran; a blob it
lacked failed the load, "content digest … not found", before anything changed). So an archive carries both layouts
over one set of blobs, and a new model moves its own layer, not the 250 MB of Python beneath it, on both stores.

The layers a host has are the `RootFS.Layers` (diff IDs) of the images it holds (docker_image_info); an image's own
are listed in the release (mnist_deploy/deploy.py reads them on the controller). An archive is named by the image
and the layers it leaves out, so hosts that hold the same layers share one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import tarfile


def held_chains(host_images: list) -> set:
    """Every chain of layers (a prefix of an image's diff IDs, as a tuple) the images HOST_IMAGES
    (docker_image_info's) are made of: the classic store reuses a layer only with the same layers beneath it."""
    chains = set()
    for image in host_images:
        layers = tuple((image.get("RootFS") or {}).get("Layers") or [])
        chains.update(layers[: depth + 1] for depth in range(len(layers)))
    return chains


def held_prefix(layers: list, chains: set) -> list:
    """The bottom layers of LAYERS whose chain is in CHAINS: what a host holding them need not receive."""
    depth = 0
    while depth < len(layers) and tuple(layers[: depth + 1]) in chains:
        depth += 1
    return list(layers[:depth])


def archive_name(image_id: str, skip: list, compress: bool) -> str:
    """The archive of IMAGE_ID without the layers SKIP: the same name for the same content."""
    name = image_id.removeprefix("sha256:")[:12]
    if skip:
        name += "-" + hashlib.sha256(json.dumps(sorted(skip)).encode()).hexdigest()[:12]
    return name + (".tar.gz" if compress else ".tar")


def ship_plan(missing: list, host_images: list, compress: bool, cache: str = "", archives: str = "") -> list:
    """For each image the host lacks (MISSING: the release's {service, ref, id, layers}), in the order the host
    loads them, what goes to it: the entry with `skip` (the layers the host holds, or gets in an archive loaded
    before, left out: the base layer every image shares travels once), `archive` (what is copied) and `source`
    (the whole `docker save` archive it is cut from), and where they are on the controller: `source_path` (in
    ARCHIVES, a release bundle's folder, when the deploy has one, else exported into CACHE once per deploy:
    `export`), `archive_path` (the source itself when nothing is left out and nothing compressed, else cut into
    CACHE: `cut`)."""
    chains = held_chains(host_images)
    plan = []
    for image in missing:
        skip = held_prefix(list(image.get("layers") or []), chains)
        chains |= held_chains([{"RootFS": {"Layers": image.get("layers") or []}}])
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


def loaded(result: dict) -> bool:
    """Whether a docker_image_load RESULT loaded its archive: it names the images it loaded. (Not its `failed`:
    the load task's failed_when, which lets a cut archive's failure through, leaves that false.)"""
    return bool(result.get("image_names"))


def load_failed(result: dict, entry: dict) -> bool:
    """Whether the load of ENTRY's archive (a ship plan's entry; RESULT: docker_image_load's) fails the deploy: not
    when the archive was cut, since its whole archive follows (`to_ship_whole`)."""
    return not loaded(result) and not entry.get("skip")


def to_ship_whole(results: list) -> list:
    """The ship plan's entries whose cut archive did not load (RESULTS: the load loop's), each now naming its whole
    archive. Probed on the sandbox: a cut archive leaving out a layer the host lacks fails to load on either store
    (a containerd store reports "content digest … not found"); the plan only leaves out layers the host holds, so
    this is the way back should a host's engine disagree with what it reported."""
    return [
        {
            **result["item"],
            "skip": [],
            "archive": result["item"]["source"],
            "archive_path": result["item"]["source_path"],
        }
        for result in results
        if not loaded(result) and result["item"].get("skip")
    ]


def made_on_controller(plan: list, cache: str) -> list:
    """The files PLAN's deploy made in CACHE (exports and cuts): what it removes once every host loaded them. A
    release bundle's archives are not the deploy's to remove."""
    made = {entry["source_path"] for entry in plan if entry["export"]} | {entry["archive_path"] for entry in plan}
    return sorted(path for path in made if os.path.dirname(path) == cache.rstrip("/"))


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
GZIP_MAGIC = b"\x1f\x8b"


def reference_name(ref: str) -> str:
    """REF as the containerd store names an image: `mnist-backend:x` is docker.io/library/mnist-backend:x."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if rest else f"docker.io/library/{ref}"


def _blob_digest(path: str, diff_id: str) -> str:
    """The digest of a `docker save` layer file: an OCI-layout export names it (`blobs/sha256/<hex>`, compressed or
    not); a legacy one (`<id>/layer.tar`) holds the uncompressed layer, whose digest is its diff ID."""
    match = re.fullmatch(r"blobs/(sha256)/([0-9a-f]{64})", path)
    return f"{match.group(1)}:{match.group(2)}" if match else diff_id


def _file(archive: tarfile.TarFile, path: str) -> tarfile.TarInfo:
    """The member holding PATH's bytes: a legacy export links a layer it holds twice to its first copy."""
    member = archive.getmember(path)
    while member.issym() or member.islnk():
        target = member.linkname if member.islnk() else posixpath.join(posixpath.dirname(member.name), member.linkname)
        member = archive.getmember(posixpath.normpath(target))
    return member


class _Writer:
    """A tar being written, PAX format, gzip level 1 when compressed (the copy, not the CPU, is what is slow)."""

    def __init__(self, raw, compress: bool):
        self.zipped = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) if compress else None
        self.tar = tarfile.open(fileobj=self.zipped or raw, mode="w", format=tarfile.PAX_FORMAT)

    def add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        self.tar.addfile(info, io.BytesIO(data))

    def copy(self, name: str, source: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = member.size, 0o644
        self.tar.addfile(info, source.extractfile(member))

    def close(self) -> None:
        self.tar.close()
        if self.zipped:
            self.zipped.close()


def _json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def cut_archive(source: str, dest: str, skip: list, compress: bool) -> dict:
    """Write DEST: the images of SOURCE (a `docker save` archive, legacy or OCI layout) without the files of the
    layers SKIP (diff IDs), gzip-compressed when COMPRESS. DEST holds both layouts over one set of blobs: Docker's
    manifest.json, which the classic store loads (skipping a layer it has without opening its file), and an OCI
    layout (oci-layout, index.json, a manifest per image), which the containerd store imports as blobs, finding
    those left out in its content store (a layer loaded there from an uncompressed archive is stored under its diff
    ID). Written beside DEST and renamed: a cut interrupted leaves no DEST. Returns {'left_out': layer files left
    out, 'bytes': DEST's size}."""
    if os.path.abspath(source) == os.path.abspath(dest):  # the whole archive, uncompressed: nothing to cut
        return {"left_out": 0, "bytes": os.path.getsize(dest)}
    temporary, skip_set = f"{dest}.part", set(skip)
    left_out, written = set(), set()
    docker_manifest, oci_index = [], []
    with tarfile.open(source) as archive, open(temporary, "wb") as raw:
        out = _Writer(raw, compress)

        def blob(digest: str, member: tarfile.TarInfo | None = None, data: bytes = b"") -> str:
            name = "blobs/" + digest.replace(":", "/")
            if name not in written:
                out.copy(name, archive, member) if member else out.add(name, data)
                written.add(name)
            return name

        for entry in json.load(archive.extractfile("manifest.json")):
            config = archive.extractfile(entry["Config"]).read()
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
            if len(diff_ids) != len(entry["Layers"]):
                raise ValueError(f"{entry['Config']}: {len(entry['Layers'])} layer files for {len(diff_ids)} layers")
            config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
            layers, paths = [], []
            for path, diff_id in zip(entry["Layers"], diff_ids, strict=True):
                member, digest = _file(archive, path), _blob_digest(path, diff_id)
                gzipped = archive.extractfile(member).read(2) == GZIP_MAGIC
                layers.append(
                    {"mediaType": OCI_LAYER + ("+gzip" if gzipped else ""), "digest": digest, "size": member.size}
                )
                if diff_id in skip_set:
                    left_out.add(path)
                    paths.append("blobs/" + digest.replace(":", "/"))
                else:
                    paths.append(blob(digest, member))
            manifest = _json(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                    "layers": layers,
                }
            )
            manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
            blob(manifest_digest, data=manifest)
            docker_manifest.append(
                {"Config": blob(config_digest, data=config), "RepoTags": entry.get("RepoTags") or [], "Layers": paths}
            )
            descriptor = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
            for ref in entry.get("RepoTags") or [None]:
                annotations = (
                    {
                        "io.containerd.image.name": reference_name(ref),
                        "org.opencontainers.image.ref.name": ref.rpartition(":")[2],
                    }
                    if ref
                    else {}
                )
                oci_index.append({**descriptor, **({"annotations": annotations} if annotations else {})})
        out.add("manifest.json", _json(docker_manifest))
        out.add(
            "index.json",
            _json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": oci_index}),
        )
        out.add("oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        out.close()
    os.replace(temporary, dest)
    return {"left_out": len(left_out), "bytes": os.path.getsize(dest)}
