"""An image's identity that holds on both Docker image stores.

The classic store names an image by its config's digest; the containerd store (the default of a fresh Docker Engine
29 and of Docker Desktop) by its manifest's, which `docker load` makes anew: the same `docker save` archive gets
another id there (probed: sha256:fb64… on the controller, sha256:7ae7… on a Debian 13 host). What both stores report
alike in `docker image inspect` is the content: the layers (diff IDs, digests of the uncompressed layers), the
platform, and the run configuration. The identity is the digest of those, computed the same way on the controller
(mnist_deploy/images.py) and on a host (docker_image_info), so a host holding an image is recognised on either store.
"""

from __future__ import annotations

import hashlib
import json

# What `docker build` sets that changes how a container runs, as `docker image inspect` reports it under Config.
# Empty values are left out: the stores differ in null against [] or {} for what an image does not set.
RUN_CONFIG = ("Cmd", "Entrypoint", "Env", "ExposedPorts", "Healthcheck", "Labels", "StopSignal", "User", "Volumes")


def identity(inspect: dict) -> str:
    """The identity of the image INSPECT describes (`docker image inspect`'s or docker_image_info's entry)."""
    config = inspect.get("Config") or {}
    content = {
        "layers": list((inspect.get("RootFS") or {}).get("Layers") or []),
        "platform": f"{inspect.get('Os') or ''}/{inspect.get('Architecture') or ''}",
        "config": {key: config[key] for key in RUN_CONFIG if config.get(key)},
        "workdir": config.get("WorkingDir") or "/",
    }
    if not content["layers"]:
        raise ValueError(f"image {inspect.get('Id', '?')} lists no layers (RootFS.Layers): not an image inspect")
    return "sha256:" + hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def of(image: dict) -> str:
    """The identity a release's image entry carries; a record written before identities existed has its classic
    image id only, which is what a host on the classic store still matches."""
    return str(image.get("identity") or image["id"])


def index(host_images: list) -> dict:
    """{identity or image id: {'id', 'tags', 'layers'}} for HOST_IMAGES (docker_image_info's images): a release's
    image is found by its identity, or by its id when its record predates identities."""
    found = {}
    for image in host_images:
        entry = {
            "id": image["Id"],
            "tags": sorted(image.get("RepoTags") or []),
            "layers": list((image.get("RootFS") or {}).get("Layers") or []),
        }
        found[image["Id"]] = entry
        if entry["layers"]:
            found[identity(image)] = entry
    return found


def missing(images: list, host_images: list) -> list:
    """The release's IMAGES a host holding HOST_IMAGES lacks."""
    held = index(host_images)
    return [image for image in images if of(image) not in held]


def to_tag(images: list, host_images: list) -> list:
    """The release's IMAGES the host holds but not under the name the compose file uses, each with `local`: the id
    the host's engine knows it by (what a tag or a removal names). An image the host lacks is the ship step's."""
    held = index(host_images)
    return [
        {**image, "local": held[of(image)]["id"]}
        for image in images
        if of(image) in held and image["ref"] not in held[of(image)]["tags"]
    ]


def local_ids(identities: list, host_images: list) -> list:
    """The ids the host's engine gives the images IDENTITIES name (those it holds), for removal."""
    held = index(host_images)
    return sorted({held[name]["id"] for name in identities if name in held})


# `docker info` names the host's machine as `uname -m` does; images name their platform as Go does.
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}


def platform(inspect: dict) -> str:
    """The platform an image is built for ('linux/amd64'), from its inspect."""
    return f"{inspect.get('Os') or 'linux'}/{inspect.get('Architecture') or ''}"


def platform_problem(images: list, host_info: dict) -> str:
    """Why the host (docker_host_info's HOST_INFO) cannot run the release's IMAGES, '' when it can: an image built
    for another platform would fail at start ("exec format error") after the deploy changed the host."""
    machine = str(host_info.get("Architecture") or "")
    host = f"{host_info.get('OSType') or 'linux'}/{GO_ARCH.get(machine, machine)}"
    wrong = [f"{image['service']} ({image['platform']})" for image in images if image.get("platform", host) != host]
    if not wrong:
        return ""
    return f"the host's engine runs {host}; the release's images are built for another platform: {', '.join(wrong)}"
