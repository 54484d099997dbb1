"""The stack's services, declared once. Everything that lists them derives from here: the images Invoke builds and
how each is tagged, the rules on published ports, the folders a release mounts by fingerprint, the services a host
runs (and testinfra expects), Invoke's help. The compose template describes how each one runs.

Image kinds: `release` (code and model: a new model replaces it), `code` (the code alone: a new model keeps it),
`recipe` (its Dockerfile alone: a release that changes neither recipe nor config keeps it running), `upstream` (not
built here).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    # The variable that turns the service on; '' when it always runs.
    enabled_by: str = ""
    # May publish a host port (mnist_stack_<name>_published, _port, _host_port).
    publishable: bool = False
    # Its config lives outside the release folder, in <home>/<name>/<fingerprint>/, so a release that keeps the
    # files keeps the container.
    mounted: bool = False


SERVICES = (
    Service("backend", "release", publishable=True),
    Service("frontend", "code", publishable=True),
    Service("prometheus", "recipe", publishable=True, mounted=True),
    Service("grafana", "upstream", enabled_by="mnist_stack_grafana_enabled", publishable=True),
    Service("proxy", "recipe", enabled_by="mnist_stack_proxy_enabled", mounted=True),
    Service("alertmanager", "recipe", enabled_by="mnist_stack_alertmanager_enabled", publishable=True, mounted=True),
    Service("node_exporter", "recipe", enabled_by="mnist_stack_node_exporter_enabled"),
    Service("release_exporter", "recipe", enabled_by="mnist_stack_release_exporter_enabled"),
)
BY_NAME = {service.name: service for service in SERVICES}
BUILT = tuple(service.name for service in SERVICES if service.image != "upstream")
PUBLISHABLE = tuple(service.name for service in SERVICES if service.publishable)
MOUNTED = tuple(service.name for service in SERVICES if service.mounted)


def of_kind(image: str) -> tuple:
    return tuple(service.name for service in SERVICES if service.image == image)


def is_on(value) -> bool:
    """A boolean variable as Ansible reads it (YAML true, or 'yes', 'true', '1', 'on')."""
    return str(value).strip().lower() in ("true", "yes", "1", "on") if isinstance(value, str) else bool(value)


def enabled(variables: dict) -> tuple:
    """The services a host with VARIABLES (role defaults applied) runs."""
    return tuple(s.name for s in SERVICES if not s.enabled_by or is_on(variables.get(s.enabled_by)))
