"""The front door on a fresh machine: a clean clone, `make up`, a healthy stack, with no manual step.

The machine is a container from the project's own minimal Debian base with python3, git and make added
(docker/fresh.Dockerfile), run the way the sandbox hosts run, so that it can start an engine of its own. It shares
what this kind of machine has and the project does not install: the apt mirror and pip's configuration (with their
local package folders, read-only) and the extra CA certificates. Everything else — python3-venv, the virtualenv,
Docker, Compose v2, debootstrap, promtool, the base and app images — `make up` must install itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from mnist_deploy import images, sandbox
from mnist_deploy.shell import run

pytestmark = pytest.mark.fresh
ROOT = images.ROOT
IMAGE = "mnist-fresh-machine:bookworm"
# What this kind of machine has and the project does not install: package configuration and local package folders.
MACHINE_FILES = [
    "/etc/apt/sources.list",
    "/etc/apt/sources.list.d",
    "/etc/pip.conf",
    "/etc/xdg/pip",
    "/root/.config/pip",
    "/opt/wheels",
    "/opt/pypi",
    "/opt/pypi-more",
]
PIP_ENVIRONMENT = ("PIP_CERT", "PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_DEFAULT_TIMEOUT")
# A line of `make up` that starts a phase, and the phase's name.
PHASES = [
    (re.compile(r"^provision: .* missing for `venv`"), "machine packages for the virtualenv"),
    (re.compile(r"^venv: installing"), "virtualenv (pip install)"),
    (re.compile(r"^provision: .* missing for `up`"), "machine packages for the stack"),
    (re.compile(r"^\[1/4\]"), "Docker engine and Compose v2"),
    (re.compile(r"^\[2/4\]"), "base and app images"),
    (re.compile(r"^\[3/4\]"), "render"),
    (re.compile(r"^\[4/4\]"), "compose up --wait"),
]


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    images.build_base()
    images.prepare_context(None, with_training=False)
    images.docker_build("fresh", IMAGE, {"BASE_IMAGE": images.BASE_IMAGE}, {})
    mounts = [arg for path in MACHINE_FILES if Path(path).exists() for arg in ("-v", f"{path}:{path}:ro")]
    environment = [arg for name in PIP_ENVIRONMENT for arg in ("-e", name)]
    volume = f"mnist-fresh-docker-{time.time_ns()}"
    container = run(
        ["docker", "run", "-d", "--label", "io.mnist.fresh=1", *sandbox.ENGINE_FLAGS, *mounts, *environment]
        + ["-v", f"{volume}:/var/lib/docker", "-v", f"{ROOT}:/src:ro", IMAGE],
        quiet=True,
    ).strip()
    try:
        yield container
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", volume], capture_output=True, check=False)


def on_machine(container: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True, timeout=timeout
    )


def test_make_up_on_a_fresh_machine_brings_the_stack_up_healthy(machine):
    assert on_machine(machine, "command -v docker || command -v dockerd").returncode != 0, "not a fresh machine"
    clone = on_machine(machine, "git config --global --add safe.directory '*' && git clone -q /src /root/mnist")
    assert clone.returncode == 0, clone.stderr
    started = time.monotonic()
    phases: list[tuple[str, float]] = [("start", started)]
    output: list[str] = []
    with subprocess.Popen(
        ["docker", "exec", "-w", "/root/mnist", machine, "make", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            for pattern, name in PHASES:
                if pattern.search(line):
                    phases.append((name, time.monotonic()))
    total = time.monotonic() - started
    phases.append(("end", started + total))
    print(f"\nmake up on a fresh machine: {total:.0f} s")
    for (name, at), (_, following) in zip(phases[1:-1], phases[2:], strict=True):
        print(f"  {name:<40} {following - at:6.0f} s")
    assert proc.returncode == 0, "".join(output[-60:])
    text = "".join(output)
    assert "full build log: build/logs/images.log" in text
    assert "App: http://127.0.0.1:8501" in text
    # Healthy, from inside the machine (its loopback is where the stack publishes).
    ready = on_machine(
        machine,
        "python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/ready', timeout=5).read()"
        ".decode()); print(u.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=5).status)\"",
    )
    assert ready.returncode == 0, ready.stderr
    readiness, frontend = ready.stdout.splitlines()
    assert json.loads(readiness)["status"] == "ready" and frontend == "200"
    states = on_machine(
        machine, "cd /root/mnist && docker compose -f build/dev/localhost/compose.yaml ps --format json"
    )
    rows = [json.loads(line) for line in states.stdout.splitlines() if line.startswith("{")]
    assert {row["Service"] for row in rows} == {"backend", "frontend", "prometheus"}
    assert all(row["Health"] == "healthy" for row in rows), rows
