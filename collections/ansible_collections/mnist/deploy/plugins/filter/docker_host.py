"""Filters for the docker_host role: thin faces over module_utils, where the decisions live and are tested."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mnist.deploy.plugins.module_utils.engine import compose_problem, plan


def docker_host_plan(installed, engine_answers, compose_version=None, source="debian", min_compose="2.18.0"):
    try:
        return plan(list(installed), bool(engine_answers), compose_version or None, source, min_compose)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def docker_compose_problem(version_text, min_compose="2.18.0"):
    """Why this Compose cannot serve ('' when it can), from `docker compose version --short`."""
    try:
        return compose_problem(str(version_text or ""), str(min_compose))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"docker_host_plan": docker_host_plan, "docker_compose_problem": docker_compose_problem}
