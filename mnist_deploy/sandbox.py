"""A sandbox to deploy to: a bastion and two target hosts as containers on a private Docker network.

Only the bastion's SSH is published (127.0.0.1:2222); the targets are reached through it (ProxyJump), exactly as
inventories/staging and inventories/production describe real servers. Each target runs its own Docker engine
(on a volume, so images shipped to it never touch the machine's engine).

Targets come in two flavours, chosen per host by `mnist_sandbox_flavour` in the inventory:
- bookworm: Debian 12, Debian's docker.io 20.10 on the classic image store, started by an entrypoint, no Compose v2
  (bootstrap copies the controller's);
- trixie: Debian 13 booting systemd, Debian's docker.io 26 on the containerd image store and Compose v2 from
  Debian's docker-compose package, already installed as on a team's server (bootstrap keeps both).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from mnist_deploy import engine, images, render, ssh, tls
from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError
from mnist_deploy.shell import console, run, succeeds

ENV = "sandbox"
HOST_IMAGE = "mnist-sandbox-host:bookworm"  # the bastion's too
NETWORK = "mnist-sandbox"
BASTION = "mnist-sandbox-bastion"
LABEL = "io.mnist.sandbox=1"
KEY = render.BUILD / "ssh" / "sandbox" / "id_ed25519"
# The flags that run a Docker engine inside a container on these machines (--privileged is refused here).
ENGINE_FLAGS = [
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
]


# A fresh /run at each start, as a server's is after a reboot (a stale docker.pid kept a restarted host's engine
# down). systemd as PID 1 in a container on these machines needs the host's cgroup namespace (cgroup v1). The
# containerd store needs /var/lib/containerd on a volume too (overlay on overlay mounts fail: "invalid argument").
FRESH_RUN = ["--tmpfs", "/run", "--tmpfs", "/run/lock"]
SYSTEMD_FLAGS = ["--security-opt", "apparmor=unconfined", "--cgroupns=host"]


@dataclass(frozen=True)
class Flavour:
    """A kind of target, declared once: how its image is built and how its container runs."""

    dockerfile: str  # docker/<dockerfile>.Dockerfile, FROM mnist-base:<the flavour's name>
    recipe: tuple[str, ...]  # what under docker/ the image is made from (files, or folders taken whole)
    engine_volumes: tuple[str, ...]  # where its engine keeps images, each on a volume
    systemd: bool  # boots systemd (else the entrypoint starts the engine, given "engine")
    own_compose: bool  # comes with Compose v2 from its own packages, as a team's server would


FLAVOURS = {
    "bookworm": Flavour("host", ("host.Dockerfile", "host-entrypoint.sh"), ("/var/lib/docker",), False, False),
    "trixie": Flavour(
        "host-trixie", ("host-trixie.Dockerfile", "sandbox"), ("/var/lib/docker", "/var/lib/containerd"), True, True
    ),
}


def host_image(flavour: str) -> str:
    return f"mnist-sandbox-host:{flavour}"


def recipe_hash(flavour: str) -> str:
    digest = hashlib.sha256()
    docker = render.ROOT / "docker"
    recipe = []
    for name in FLAVOURS[flavour].recipe:
        path = docker / name
        recipe += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for path in recipe:
        digest.update(path.relative_to(docker).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_host_image(flavour: str = "bookworm") -> None:
    recipe, tag = recipe_hash(flavour), host_image(flavour)
    if images.image_exists(tag):
        current = run(
            ["docker", "image", "inspect", "--format", '{{index .Config.Labels "io.mnist.recipe"}}', tag], quiet=True
        ).strip()
        if current == recipe:
            return
    base = images.build_base(suite=flavour)
    images.prepare_context(None, with_training=False)
    images.docker_build(FLAVOURS[flavour].dockerfile, tag, {"BASE_IMAGE": base}, {"io.mnist.recipe": recipe})


def flavours(hostvars: dict, only: str | None = None) -> dict[str, str]:
    """Each target's flavour: the inventory's `mnist_sandbox_flavour` (bookworm when unset), or ONLY for all."""
    chosen = {host: str(only or values.get("mnist_sandbox_flavour", "bookworm")) for host, values in hostvars.items()}
    unknown = sorted({flavour for flavour in chosen.values() if flavour not in FLAVOURS})
    if unknown:
        raise DeployError(f"sandbox flavour {', '.join(unknown)} unknown: choose {' or '.join(FLAVOURS)}")
    return chosen


def container(host: str) -> str:
    return f"mnist-sandbox-{host}"


def ensure_key() -> Path:
    if not KEY.is_file():
        KEY.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mnist-sandbox", "-f", KEY], quiet=True)
    KEY.chmod(0o600)
    return KEY


def is_up() -> bool:
    return succeeds(["docker", "container", "inspect", BASTION])


# Where Docker's own docker-compose-plugin package puts Compose: with bookworm targets only, the last gets it there
# before bootstrap, as a server whose engine and Compose came from elsewhere (Docker's repository, say) has it.
# Bootstrap must keep both. A trixie target has both from Debian's packages.
UPSTREAM_COMPOSE_PATH = "/usr/libexec/docker/cli-plugins/docker-compose"


def engine_from_elsewhere(hosts: list[str], only: str | None = None) -> str:
    """The target whose engine and Compose were installed before the toolkit came: the first whose flavour comes with
    Compose, else the last (which `up` gives Compose where Docker's package puts it)."""
    chosen = flavours(Environment.read(ENV).hostvars, only)
    return next((host for host in hosts if FLAVOURS[chosen[host]].own_compose), hosts[-1])


def up(timeout: float = 90, flavour: str | None = None) -> list[str]:
    """Start the bastion and the targets (fresh host keys; FLAVOUR for every target instead of the inventory's),
    and wait until each answers SSH through the bastion."""
    engine.ensure_engine()
    if is_up():
        down()
    key = ensure_key()
    hostvars = Environment.read(ENV).hostvars
    hosts = sorted(hostvars)
    chosen = flavours(hostvars, flavour)
    for name in sorted({"bookworm", *chosen.values()}):
        build_host_image(name)
    port = hostvars[hosts[0]]["mnist_bastion_port"]
    tls.sandbox_certificates(hosts)
    run(["docker", "network", "create", "--internal", "--label", LABEL, NETWORK], quiet=True)
    authorized = ["-v", f"{key}.pub:/etc/ssh/authorized_keys/deploy:ro"]
    run(
        ["docker", "run", "-d", "--name", BASTION, "--hostname", "bastion", "--label", LABEL, *authorized]
        + ["-p", f"127.0.0.1:{port}:22", HOST_IMAGE],
        quiet=True,
    )
    run(["docker", "network", "connect", NETWORK, BASTION], quiet=True)
    for host in hosts:
        kind = FLAVOURS[chosen[host]]
        volumes = []
        for path in kind.engine_volumes:
            volumes += ["-v", f"{container(host)}-{Path(path).name}:{path}"]
        run(
            ["docker", "run", "-d", "--name", container(host), "--hostname", host, "--label", LABEL]
            + ["--network", NETWORK, "--network-alias", host, *ENGINE_FLAGS, *FRESH_RUN, *authorized, *volumes]
            + (SYSTEMD_FLAGS if kind.systemd else [])
            + [host_image(chosen[host])]
            + ([] if kind.systemd else ["engine"]),
            quiet=True,
        )
    if not any(FLAVOURS[name].own_compose for name in chosen.values()):
        elsewhere = container(engine_from_elsewhere(hosts, flavour))
        run(["docker", "exec", elsewhere, "mkdir", "-p", str(Path(UPSTREAM_COMPOSE_PATH).parent)], quiet=True)
        run(["docker", "cp", engine.COMPOSE_PLUGIN, f"{elsewhere}:{UPSTREAM_COMPOSE_PATH}"], quiet=True)
    ssh.known_hosts_path(ENV).unlink(missing_ok=True)  # new containers, new host keys
    config = ssh.write_config(ENV, hostvars=hostvars)
    deadline = time.monotonic() + timeout
    for host in hosts:
        while not succeeds(["ssh", "-F", config, "-o", "ConnectTimeout=5", host, "true"], timeout=15):
            if time.monotonic() > deadline:
                raise DeployError(f"{host} does not answer SSH through the bastion after {timeout:.0f} s")
            time.sleep(1)
        console.print(f"{host} ({chosen[host]}): SSH through the bastion answers")
    return hosts


def down() -> list[str]:
    """Remove the sandbox's containers, their engines' volumes and the network: nothing is left running."""
    names = run(["docker", "ps", "-aq", "--filter", f"label={LABEL}"], quiet=True).split()
    if names:
        run(["docker", "rm", "-f", "-v", *names], quiet=True)
    # One by one: a volume already gone (`rm -v` above, an earlier teardown) is no failure; one left behind is.
    listing = ["docker", "volume", "ls", "-q", "--filter", "name=mnist-sandbox-"]
    for volume in run(listing, quiet=True).split():
        succeeds(["docker", "volume", "rm", volume])
    left = run(listing, quiet=True).split()
    if left:
        raise DeployError(f"sandbox volumes left behind: {', '.join(left)} (`docker volume rm` them by name)")
    if succeeds(["docker", "network", "inspect", NETWORK]):
        run(["docker", "network", "rm", NETWORK], quiet=True)
    return names
