"""A sandbox to deploy to: a bastion and two target hosts as containers on a private Docker network.

Only the bastion's SSH is published (127.0.0.1:2222); the targets are reached through it (ProxyJump), exactly as
inventories/staging and inventories/production describe real servers. Each target runs its own Docker engine
(on a volume, so images shipped to it never touch the machine's engine).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from mnist_deploy import engine, images, render, ssh, tls
from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError
from mnist_deploy.shell import console, run, succeeds

ENV = "sandbox"
HOST_IMAGE = "mnist-sandbox-host:bookworm"
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


def recipe_hash() -> str:
    digest = hashlib.sha256()
    for name in ("host.Dockerfile", "host-entrypoint.sh"):
        digest.update((render.ROOT / "docker" / name).read_bytes())
    return digest.hexdigest()[:16]


def build_host_image() -> None:
    recipe = recipe_hash()
    if images.image_exists(HOST_IMAGE):
        current = run(
            ["docker", "image", "inspect", "--format", '{{index .Config.Labels "io.mnist.recipe"}}', HOST_IMAGE],
            quiet=True,
        ).strip()
        if current == recipe:
            return
    images.build_base()
    images.prepare_context(None, with_training=False)
    images.docker_build("host", HOST_IMAGE, {"BASE_IMAGE": images.BASE_IMAGE}, {"io.mnist.recipe": recipe})


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


# Where Docker's own docker-compose-plugin package puts Compose: the last target gets it there before bootstrap, as a
# server whose engine and Compose came from elsewhere (Docker's repository, say) has it. Bootstrap must keep both.
UPSTREAM_COMPOSE_PATH = "/usr/libexec/docker/cli-plugins/docker-compose"


def engine_from_elsewhere(hosts: list[str]) -> str:
    return hosts[-1]


def up(timeout: float = 60) -> list[str]:
    """Start the bastion and the targets (fresh host keys), and wait until each answers SSH through the bastion."""
    engine.ensure_engine()
    if is_up():
        down()
    build_host_image()
    key = ensure_key()
    hostvars = Environment.read(ENV).hostvars
    hosts = sorted(hostvars)
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
        run(
            ["docker", "run", "-d", "--name", container(host), "--hostname", host, "--label", LABEL]
            + ["--network", NETWORK, "--network-alias", host, *ENGINE_FLAGS, *authorized]
            + ["-v", f"{container(host)}-docker:/var/lib/docker", HOST_IMAGE, "engine"],
            quiet=True,
        )
    elsewhere = container(engine_from_elsewhere(hosts))
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
        console.print(f"{host}: SSH through the bastion answers")
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
