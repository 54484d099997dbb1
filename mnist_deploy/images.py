"""Images without a registry: a Debian base made with debootstrap, then the app images built FROM it.

Tags are immutable: `<service>:<git sha>-<model version>`, never `latest`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from app.mnist import store
from mnist_deploy import provision
from mnist_deploy.collection import identity, services
from mnist_deploy.errors import DeployError
from mnist_deploy.shell import console, run, run_logged, succeeds

ROOT = Path(__file__).resolve().parent.parent
SUITE = "bookworm"
BASE_IMAGE = f"mnist-base:{SUITE}"
CA_DIR = ROOT / "build" / "ca-certificates"
# Where Debian keeps locally added CA certificates; trusted by image builds unless another folder is given.
SYSTEM_EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")
WHEELHOUSE = ROOT / "build" / "wheelhouse"
BUILD_LOG = ROOT / "build" / "logs" / "images.log"
# A build step as the classic builder ("Step 3/12 : RUN …") and BuildKit ("#7 [3/8] RUN …") print it.
DOCKER_STEP = re.compile(r"^(?:Step (\d+)/(\d+) :|#\d+ \[(?:\S+ )?(\d+)/(\d+)\])(.*)")
SERVICES = services.BUILT
OPTIONAL_SERVICES = ("training",)


@dataclass(frozen=True)
class Built:
    service: str
    tag: str
    image_id: str
    size_mb: float
    seconds: float


# For a controller that is not Debian 12 (an Ubuntu CI runner, a laptop): the Debian mirror to debootstrap from and
# the keyring that signs it (Ubuntu's debian-archive-keyring package installs one), or an image to build FROM
# instead of the debootstrap base (a team's registry's Debian 12). Unset, the machine's own apt configuration and
# keyring serve.
MIRROR_ENV, KEYRING_ENV, BASE_IMAGE_ENV = "MNIST_DEBIAN_MIRROR", "MNIST_DEBIAN_KEYRING", "MNIST_BASE_IMAGE"


def apt_mirror(suite: str = SUITE) -> str:
    """The Debian mirror: $MNIST_DEBIAN_MIRROR, else the machine's own, read from its apt configuration (a mirror
    serves every suite: the one that names SUITE, else the one that names the machine's own)."""
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV]
    for name in dict.fromkeys((suite, SUITE)):
        found = _mirror_for(name)
        if found:
            return found
    raise DeployError(
        f"no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list: set {MIRROR_ENV} "
        f"(and {KEYRING_ENV} off Debian), or {BASE_IMAGE_ENV} to build from a Debian 12 image you have"
    )


def base_image() -> str:
    """The image every app image is built FROM: $MNIST_BASE_IMAGE when given (pulled when absent), else the
    debootstrap base made here."""
    given = os.environ.get(BASE_IMAGE_ENV, "")
    if not given:
        return build_base()
    if not image_exists(given):
        console.print(f"pulling the base image {given} ({BASE_IMAGE_ENV})")
        run(["docker", "pull", given], quiet=True)
    return given


def _mirror_for(suite: str) -> str:
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for block in path.read_text().split("\n\n"):
            if re.search(rf"^Suites:.*\b{suite}\b(?!-)", block, re.M) and "debian-security" not in block:
                match = re.search(r"^URIs:\s*(\S+)", block, re.M)
                if match:
                    return match.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1] if not parts[1].startswith("[") else parts[2]
    return ""


def image_exists(tag: str) -> bool:
    return succeeds(["docker", "image", "inspect", tag])


def build_base(force: bool = False, suite: str = SUITE) -> str:
    """debootstrap a minimal Debian SUITE (bookworm: what every image is built from) with the machine's mirror and
    `docker import` it as mnist-base:SUITE."""
    tag = f"mnist-base:{suite}"
    if image_exists(tag) and not force:
        console.print(f"base image {tag} already present")
        return tag
    provision.require("debootstrap", console.print)
    mirror = apt_mirror(suite)
    keyring = [f"--keyring={os.environ[KEYRING_ENV]}"] if os.environ.get(KEYRING_ENV) else []
    console.print(f"[bold]Building {tag}[/] with debootstrap from {mirror}")
    with tempfile.TemporaryDirectory(prefix="mnist-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run_logged(
            ["debootstrap", "--variant=minbase", "--include=ca-certificates", *keyring, suite, rootfs, mirror],
            BUILD_LOG,
            f"{tag}: debootstrap {suite}",
        )
        # Package lists, caches, docs and translations: images install what they need and need none of these.
        for leftover in (
            "var/lib/apt/lists",
            "var/cache/apt",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/info",
            "usr/share/locale",
        ):
            for item in (rootfs / leftover).glob("*"):
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item)
                else:
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run_logged(
            ["docker", "import", "--change", "ENV LANG=C.UTF-8", "-", tag],
            BUILD_LOG,
            f"{tag}: docker import",
            input=tar.communicate()[0],
        )
    return tag


def prepare_context(extra_ca_dir: Path | None, with_training: bool) -> None:
    """Put the extra CA certificates (and torch's CPU wheel) where the Dockerfiles copy them from."""
    shutil.rmtree(CA_DIR, ignore_errors=True)
    CA_DIR.mkdir(parents=True)
    (CA_DIR / "README").write_text("Extra CA certificates (*.crt) trusted by image builds.\n")
    if extra_ca_dir is None and SYSTEM_EXTRA_CA_DIR.is_dir():
        extra_ca_dir = SYSTEM_EXTRA_CA_DIR
    if extra_ca_dir is not None:
        if not extra_ca_dir.is_dir():
            raise DeployError(f"--ca-dir {extra_ca_dir} is not a directory")
        for cert in sorted(extra_ca_dir.glob("*.crt")):
            shutil.copy2(cert, CA_DIR / cert.name)
    if with_training and not any(WHEELHOUSE.glob("torch-2.13.0*.whl")):
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "torch==2.13.0", "-d", WHEELHOUSE])


REVISION = ROOT / "REVISION"  # the commit of a checkout without its history (`invoke bastion.setup` writes it)


def git_sha() -> str:
    if not (ROOT / ".git").exists() and REVISION.is_file():
        return REVISION.read_text().strip()
    sha = run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, quiet=True).strip()
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, quiet=True)
    if dirty:
        diff = run(["git", "diff", "HEAD"], cwd=ROOT, quiet=True)
        sha += "-dirty" + hashlib.sha256(diff.encode()).hexdigest()[:8]
    return sha


def release_tag(model_version: str) -> str:
    return f"{git_sha()}-{model_version[:12]}"


# Images tagged by their recipe instead of the release: a release must not replace the proxy (and cut its clients'
# connections) or Prometheus (and leave a gap in the metrics) unless that service itself changed.
# A recipe is its Dockerfile (docker/<service>.Dockerfile) and the files it copies, listed here (from the root).
MODULE_UTILS = "collections/ansible_collections/mnist/deploy/plugins/module_utils"
RECIPE_EXTRA_FILES = {
    "database": ("docker/database-entrypoint.sh",),
    "proxy": ("docker/proxy-ctl.sh",),
    "release_exporter": (f"{MODULE_UTILS}/drift.py", f"{MODULE_UTILS}/lock.py"),
}
RECIPE_TAGGED = {
    service: (f"docker/{service}.Dockerfile", *RECIPE_EXTRA_FILES.get(service, ()))
    for service in services.of_kind("recipe")
}


def recipe_tag(service: str) -> str:
    digest = hashlib.sha256()
    for name in RECIPE_TAGGED[service]:
        digest.update((ROOT / name).read_bytes())
    return f"recipe-{digest.hexdigest()[:12]}"


# Images tagged by the code alone (the release tag without its model version): a new model must not replace the UI,
# whose image (built without the model) keeps its id across models.
CODE_TAGGED = services.of_kind("code")


def ref(service: str, tag: str) -> str:
    """The image name a release's compose file uses: never `latest`."""
    if service in RECIPE_TAGGED:
        return f"mnist-{service}:{recipe_tag(service)}"
    return f"mnist-{service}:{tag.rsplit('-', 1)[0] if service in CODE_TAGGED else tag}"


def docker_build(service: str, image: str, build_args: dict[str, str], labels: dict[str, str]) -> None:
    args: list[str | Path] = ["docker", "build", "--network", "host", "-f", ROOT / "docker" / f"{service}.Dockerfile"]
    for key, value in build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    run_logged([*args, "-t", image, ROOT], BUILD_LOG, image, DOCKER_STEP)


def image_id(image: str) -> str:
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", image], quiet=True).strip()


def image_identity(image: str) -> dict[str, Any]:
    """IMAGE's id on this engine, its identity on any engine (the collection's identity.py: ids differ between image
    stores), its platform and its layers (diff IDs, base first: a deploy ships a host only those it lacks), in one
    inspect."""
    (inspect,) = json.loads(run(["docker", "image", "inspect", image], quiet=True))
    return {
        "id": inspect["Id"],
        "identity": identity.identity(inspect),
        "platform": identity.platform(inspect),
        "layers": inspect["RootFS"]["Layers"],
    }


def image_size(image: str) -> int:
    """Bytes of IMAGE's layers, uncompressed: about what an archive of it weighs."""
    return int(run(["docker", "image", "inspect", "--format", "{{.Size}}", image], quiet=True).strip())


def build(
    services: list[str],
    model_dir: Path,
    extra_ca_dir: Path | None,
    base_image: str = BASE_IMAGE,
    tag: str | None = None,
) -> list[Built]:
    """Build SERVICES' images tagged TAG (default: the release tag of the store's current model)."""
    model_dir = model_dir.resolve()
    if not model_dir.is_relative_to(ROOT):
        raise DeployError(f"the model store {model_dir} must be inside the build context {ROOT}")
    model_version = store.current_version(model_dir)
    store.load(model_dir, model_version)  # refuse to bake a model that fails its integrity check
    tag = tag or release_tag(model_version)  # the caller's tag: files edited during a build must not change it
    prepare_context(extra_ca_dir, with_training="training" in services)
    built = []
    for index, service in enumerate(services, 1):
        image = ref(service, tag)
        console.print(f"[bold]image {index}/{len(services)}[/]: {image}")
        started = time.monotonic()
        labels = {"org.opencontainers.image.revision": tag.split("-")[0]}
        if service in RECIPE_TAGGED:  # the same recipe must give the same image id, whatever the commit
            labels = {"io.mnist.recipe": recipe_tag(service)}
        if service == "backend":  # only the backend holds the model: the others keep their id across models
            labels["io.mnist.model-version"] = model_version
        build_args = {
            "BASE_IMAGE": base_image,
            "MODEL_DIR": str(model_dir.relative_to(ROOT)),
            "MODEL_VERSION": model_version,
        }
        docker_build(service, image, build_args, labels)
        info = json.loads(run(["docker", "image", "inspect", image], quiet=True))[0]
        built.append(Built(service, image, info["Id"], info["Size"] / 1e6, time.monotonic() - started))
    console.print(f"full build log: {BUILD_LOG.relative_to(ROOT)}")
    return built


def table(built: list[Built]) -> Table:
    result = Table(title="Images")
    for column in ("service", "image", "id", "size", "build time"):
        result.add_column(column)
    for b in built:
        result.add_row(
            b.service, b.tag, b.image_id.removeprefix("sha256:")[:12], f"{b.size_mb:.0f} MB", f"{b.seconds:.0f} s"
        )
    return result
