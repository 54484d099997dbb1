"""What a host lacks to run the stack, from facts gathered on it. Plain data in, plain data out."""

from __future__ import annotations

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


def plan(
    installed: Iterable[str],
    engine_answers: bool,
    compose_version: str | None,
    source: str = "debian",
    min_compose: str = "2.18.0",
) -> dict:
    """Decide what to install on a host.

    INSTALLED: the host's package names; ENGINE_ANSWERS: `docker info` succeeded; COMPOSE_VERSION: what
    `docker compose version --short` printed (None when it failed).
    """
    if source not in SOURCE_PACKAGES:
        raise ValueError(f"docker_host_source is {source!r}; choose one of {', '.join(SOURCE_PACKAGES)}")
    packages = set(installed)
    found = [name for name in ENGINE_PACKAGES if name in packages]
    keep = engine_answers or bool(found)
    install = [] if keep else [p for p in SOURCE_PACKAGES[source] if p not in packages]
    if SDK_PACKAGE not in packages:
        install.append(SDK_PACKAGE)
    compose_ok = compose_problem(compose_version, min_compose) == ""
    compose_from_packages = "docker-compose-plugin" in install
    copy_compose = not compose_ok and not compose_from_packages
    if keep:
        what = ", ".join(found) if found else "an engine that answers (no known engine package)"
        reason = f"keeping the installed engine: {what}"
    else:
        reason = f"no engine found: installing {', '.join(SOURCE_PACKAGES[source])} ({source})"
    if copy_compose:
        reason += f"; Compose v2 {compose_version or 'missing'} (< {min_compose}): copying the controller's plugin"
    return {
        "keep_engine": keep,
        "engine_packages": found,
        "install": install,
        "install_engine": not keep,
        "copy_compose": copy_compose,
        "reason": reason,
    }
