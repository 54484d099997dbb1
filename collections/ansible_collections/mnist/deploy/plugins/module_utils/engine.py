"""What a host lacks to run the stack, from facts gathered on it. Plain data in, plain data out."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

# An engine from any of these is kept as it is: installing docker.io beside docker-ce may make apt remove
# docker-ce and containerd.io, stopping every container on the host.
ENGINE_PACKAGES = ("docker-ce", "docker.io", "moby-engine", "containerd.io")
SOURCE_PACKAGES = {
    "debian": ("docker.io",),
    "upstream": ("docker-ce", "docker-ce-cli", "containerd.io", "docker-compose-plugin"),
}
SDK_PACKAGE = "python3-requests"  # community.docker's API modules need it on the host
# What community.docker's docker_compose_v2 needs (its module_utils/compose_v2.py MINIMUM_COMPOSE_VERSION): a
# deploy's preflight refuses less; bootstrap installs at least docker_host_compose_min_version (the same by default).
MIN_COMPOSE = "2.18.0"


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """'v2.40.3', '2.26.1+ds1-1' → (2, 40, 3); None for no or unreadable output."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if match is None:
        return None
    return tuple(int(part or 0) for part in match.groups())


def compose_problem(text: str | None, min_compose: str) -> str:
    """Why the Compose that printed TEXT (`docker compose version --short`) cannot serve, '' when it can."""
    version, minimum = parse_version(text), parse_version(min_compose)
    if minimum is None:
        raise ValueError(f"docker_host_compose_min_version {min_compose!r} is not a version")
    if version is None:
        return f"Compose v2 does not answer (`docker compose version` printed {(text or '').strip()!r})"
    if version < minimum:
        return (
            f"Compose {(text or '').strip()} is older than {min_compose} (community.docker.docker_compose_v2 needs it)"
        )
    return ""


def installed_packages(dpkg_query: str) -> list:
    """The installed packages' names from `dpkg-query -W -f '${db:Status-Abbrev} ${Package}\\n'` (read without
    python3-apt, which a minimal server lacks and Ansible's package_facts needs)."""
    names = []
    for line in dpkg_query.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].startswith("ii"):
            names.append(fields[1].split(":", 1)[0])
    return sorted(names)


def candidate_version(apt_cache_policy: str) -> str:
    """The version apt would install, from `apt-cache policy PACKAGE` ('' when none: unknown package, no lists)."""
    match = re.search(r"^\s*Candidate:\s*(\S+)", apt_cache_policy or "", re.M)
    return "" if match is None or match.group(1) == "(none)" else match.group(1)


# ELF e_machine values, and the names `uname -m` (Ansible's `architecture` fact) gives those machines.
ELF_MACHINES = {62: "x86_64", 183: "aarch64", 40: "armv7l", 3: "i386", 243: "riscv64", 21: "ppc64le", 22: "s390x"}


def elf_machine(header: bytes) -> str:
    """The machine an ELF executable is built for (`uname -m`'s name), from its first 20 bytes."""
    if header[:4] != b"\x7fELF" or len(header) < 20:
        raise ValueError("not an ELF executable")
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"ELF machine {machine}")


def plan(
    installed: Iterable[str],
    engine_answers: bool,
    compose_version: str | None,
    source: str = "debian",
    min_compose: str = "2.18.0",
    compose_candidate: str = "",
    host_arch: str = "",
    plugin_arch: str = "",
) -> dict:
    """Decide what to install on a host.

    INSTALLED: the host's package names; ENGINE_ANSWERS: `docker info` succeeded; COMPOSE_VERSION: what
    `docker compose version --short` printed (None when it failed); COMPOSE_CANDIDATE: the version of Debian's
    `docker-compose` package apt would install ('' for none: Debian 12's is Compose v1, 1.29); HOST_ARCH and
    PLUGIN_ARCH: the host's machine and the controller's Compose plugin's, compared before it is copied.

    Compose: the host's own is kept; one too old is refused, not shadowed by a copy in /usr/local (the host's
    package manager owns it); a host without one gets it from its packages when they carry Compose v2, otherwise
    the controller's plugin, only if built for the host's machine. `problem` says why the host cannot be made ready.
    """
    if source not in SOURCE_PACKAGES:
        raise ValueError(f"docker_host_source is {source!r}; choose one of {', '.join(SOURCE_PACKAGES)}")
    packages = set(installed)
    found = [name for name in ENGINE_PACKAGES if name in packages]
    keep = engine_answers or bool(found)
    install = [] if keep else [p for p in SOURCE_PACKAGES[source] if p not in packages]
    if SDK_PACKAGE not in packages:
        install.append(SDK_PACKAGE)
    if keep:
        what = ", ".join(found) if found else "an engine that answers (no known engine package)"
        reason = f"keeping the installed engine: {what}"
    else:
        reason = f"no engine found: installing {', '.join(SOURCE_PACKAGES[source])} ({source})"
    problem, copy_compose = "", False
    own = parse_version(compose_version)
    if own is not None:
        problem = compose_problem(compose_version, min_compose)
        if problem:
            problem += ": upgrade the host's own Compose (bootstrap does not install a second one beside it)"
        else:
            reason += f"; keeping the host's Compose {compose_version}"
    elif "docker-compose-plugin" in install:
        reason += "; Compose v2 from docker-compose-plugin"
    elif compose_candidate and not compose_problem(compose_candidate, min_compose):
        install.append("docker-compose")
        reason += f"; Compose v2 from the host's docker-compose package ({compose_candidate})"
    elif host_arch and plugin_arch and host_arch != plugin_arch:
        problem = (
            f"the host has no Compose v2 and its packages carry none; the controller's plugin is built for "
            f"{plugin_arch}, the host is {host_arch}: set docker_host_compose_plugin_src to a {host_arch} build"
        )
    else:
        copy_compose = True
        reason += f"; no Compose v2 on the host or in its packages: copying the controller's plugin ({plugin_arch})"
    return {
        "keep_engine": keep,
        "engine_packages": found,
        "install": install,
        "install_engine": not keep,
        "copy_compose": copy_compose,
        "problem": problem,
        "reason": reason,
    }


def daemon_config(current: str | None, settings: dict) -> tuple[dict, bool]:
    """The engine's daemon.json (CURRENT: its text, None when absent) with SETTINGS set, and whether that changes
    it. Every other key is kept as the host's owner wrote it; a file that is not a JSON object is refused (ValueError)
    rather than replaced: the engine would not start with it either way, and it is the owner's to mend."""
    config: dict = {}
    if current is not None and current.strip():
        try:
            config = json.loads(current)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"daemon.json is not JSON ({exc}): mend it by hand, bootstrap does not replace it"
            ) from exc
        if not isinstance(config, dict):
            raise ValueError("daemon.json is not a JSON object: mend it by hand, bootstrap does not replace it")
    wanted = {**config, **settings}
    return wanted, wanted != config
