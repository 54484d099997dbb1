"""A release bundle: what deploys a release from a machine with no Docker engine (the bastion).

`build/bundles/ID/` holds the release's record (release.json, as assembled where it was built) and one `docker save`
archive per image, named as the deploy's ship step names a whole archive (module_utils/archive.py). A deploy of
`--release ID` that finds the bundle ships from those archives instead of exporting from an engine, after checking
that each archive holds the very image the release names: its identity (module_utils/identity.py), computed from the
archive's own image config, must be the one recorded when the release was built.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

from mnist_deploy import render
from mnist_deploy.collection import archive, identity
from mnist_deploy.errors import DeployError
from mnist_deploy.shell import console, run

BUNDLES = render.BUILD / "bundles"
RECORD = "release.json"


def folder(release_id: str, root: Path = BUNDLES) -> Path:
    return root / release_id


def archive_path(bundle: Path, image: dict[str, Any]) -> Path:
    return bundle / "images" / archive.archive_name(image["id"], [], False)


def archive_identity(path: Path) -> str:
    """The identity of the one image in the `docker save` archive PATH, from its config as `docker image inspect`
    would report it."""
    with tarfile.open(path) as tar:
        manifest = tar.extractfile("manifest.json")
        if manifest is None:
            raise ValueError("no manifest.json")
        (entry,) = json.load(manifest)
        config_file = tar.extractfile(entry["Config"])
        if config_file is None:
            raise ValueError(f"no {entry['Config']}")
        config = json.load(config_file)
    inspect = {
        "Os": config.get("os"),
        "Architecture": config.get("architecture"),
        "Config": config.get("config") or {},
        "RootFS": {"Layers": (config.get("rootfs") or {}).get("diff_ids") or []},
    }
    return identity.identity(inspect)


def make(release: dict[str, Any], root: Path = BUNDLES) -> Path:
    """Write RELEASE's bundle from this machine's engine (where it was built); an archive already there and right
    is kept. Return its folder."""
    bundle = folder(release["id"], root)
    (bundle / "images").mkdir(parents=True, exist_ok=True)
    for image in release["images"]:
        path = archive_path(bundle, image)
        if path.is_file() and _identity_or_none(path) == identity.of(image):
            continue
        partial = path.with_suffix(".partial")
        run(["docker", "image", "save", "--output", str(partial), image["ref"]], quiet=True)
        if archive_identity(partial) != identity.of(image):
            partial.unlink()
            raise DeployError(f"{image['ref']} on this engine is not the image release {release['id']} was built with")
        partial.rename(path)
        console.print(f"  {image['service']}: {path.name} ({path.stat().st_size / 1e6:.0f} MB)")
    (bundle / RECORD).write_text(json.dumps(release, indent=2, sort_keys=True) + "\n")
    return bundle


def _identity_or_none(path: Path) -> str | None:
    try:
        return archive_identity(path)
    except (OSError, ValueError, KeyError, tarfile.TarError):
        return None


def load(release_id: str, root: Path = BUNDLES) -> tuple[dict[str, Any], Path] | None:
    """The release record and folder of bundle RELEASE_ID, or None when there is none; DeployError naming each
    archive that is missing or holds another image than the release names."""
    bundle = folder(release_id, root)
    if not (bundle / RECORD).is_file():
        return None
    release = json.loads((bundle / RECORD).read_text())
    wrong = []
    for image in release["images"]:
        path = archive_path(bundle, image)
        if not path.is_file():
            wrong.append(f"{image['service']}: {path.name} is missing")
        elif _identity_or_none(path) != identity.of(image):
            wrong.append(f"{image['service']}: {path.name} holds another image (or is damaged)")
    if wrong:
        raise DeployError(f"bundle {bundle} cannot deploy release {release_id}: {'; '.join(wrong)}")
    return release, bundle


def remove(release_id: str, root: Path = BUNDLES) -> None:
    shutil.rmtree(folder(release_id, root), ignore_errors=True)
