"""Filters for the docker_host role: thin faces over module_utils, where the decisions live and are tested."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mnist.deploy.plugins.module_utils.engine import (
    candidate_version,
    compose_problem,
    elf_machine,
    installed_packages,
    plan,
)


def docker_host_plan(
    dpkg_query,
    engine_answers,
    compose_version=None,
    source="debian",
    min_compose="2.18.0",
    compose_policy="",
    host_arch="",
    plugin_arch="",
):
    """What the host lacks, from what `dpkg-query -W` (DPKG_QUERY) and `apt-cache policy docker-compose`
    (COMPOSE_POLICY) printed there: module_utils/engine.py's plan."""
    try:
        return plan(
            installed_packages(str(dpkg_query)),
            bool(engine_answers),
            compose_version or None,
            source,
            min_compose,
            candidate_version(str(compose_policy or "")),
            str(host_arch or ""),
            str(plugin_arch or ""),
        )
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def docker_compose_problem(version_text, min_compose="2.18.0"):
    """Why this Compose cannot serve ('' when it can), from `docker compose version --short`."""
    try:
        return compose_problem(str(version_text or ""), str(min_compose))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def executable_arch(path):
    """The machine (`uname -m`'s name) the executable at PATH, on the controller, is built for; '' when absent."""
    try:
        with open(str(path), "rb") as executable:
            return elf_machine(executable.read(20))
    except FileNotFoundError:
        return ""
    except ValueError as exc:
        raise AnsibleFilterError(f"{path}: {exc}") from exc


class FilterModule:
    def filters(self):
        return {
            "docker_host_plan": docker_host_plan,
            "docker_compose_problem": docker_compose_problem,
            "executable_arch": executable_arch,
        }
