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
    # The vault variable holding its password, handed to it as the compose secret named after the variable
    # (mnist_stack_database_password: /run/secrets/database_password); required when the service runs.
    vault_variable: str = ""

    @property
    def secret_file(self) -> str:
        return self.vault_variable[len("mnist_stack_") :]


SERVICES = (
    Service("backend", "release", publishable=True),
    Service("frontend", "code", publishable=True),
    Service("prometheus", "recipe", publishable=True, mounted=True),
    Service(
        "grafana",
        "upstream",
        enabled_by="mnist_stack_grafana_enabled",
        publishable=True,
        vault_variable="mnist_stack_grafana_admin_password",
    ),
    Service("proxy", "recipe", enabled_by="mnist_stack_proxy_enabled", mounted=True),
    Service("alertmanager", "recipe", enabled_by="mnist_stack_alertmanager_enabled", publishable=True, mounted=True),
    Service("node_exporter", "recipe", enabled_by="mnist_stack_node_exporter_enabled"),
    Service("release_exporter", "recipe", enabled_by="mnist_stack_release_exporter_enabled"),
    # PostgreSQL for the users' corrections (Debian's package); without it the backend keeps them in SQLite.
    Service(
        "database", "recipe", enabled_by="mnist_stack_database_enabled", vault_variable="mnist_stack_database_password"
    ),
)
BY_NAME = {service.name: service for service in SERVICES}
BUILT = tuple(service.name for service in SERVICES if service.image != "upstream")
PUBLISHABLE = tuple(service.name for service in SERVICES if service.publishable)
MOUNTED = tuple(service.name for service in SERVICES if service.mounted)
WITH_PASSWORD = tuple(service for service in SERVICES if service.vault_variable)
# What a host's secrets depend on: each such service's switch and password variable.
PASSWORD_VARIABLES = tuple(name for service in WITH_PASSWORD for name in (service.enabled_by, service.vault_variable))


def of_kind(image: str) -> tuple:
    return tuple(service.name for service in SERVICES if service.image == image)


def is_on(value) -> bool:
    """A boolean variable as Ansible reads it (YAML true, or 'yes', 'true', '1', 'on')."""
    return str(value).strip().lower() in ("true", "yes", "1", "on") if isinstance(value, str) else bool(value)


def enabled(variables: dict) -> tuple:
    """The services a host with VARIABLES (role defaults applied) runs."""
    return tuple(s.name for s in SERVICES if not s.enabled_by or is_on(variables.get(s.enabled_by)))


def images_run(images: list, variables: dict) -> list:
    """The release's IMAGES ([{service, ...}]) of the services a host with VARIABLES runs: what it is shipped, what
    its record lists (a host without the database is never sent its image)."""
    running = set(enabled(variables))
    return [image for image in images if image["service"] in running]


def password_files(variables: dict) -> dict:
    """{compose secret file name: password} for the services with a password that VARIABLES turn on."""
    return {
        service.secret_file: str(variables.get(service.vault_variable) or "")
        for service in WITH_PASSWORD
        if is_on(variables.get(service.enabled_by))
    }


# Where the backend keeps corrections when the inventory names no URL (mnist_stack_feedback_url: "").
SQLITE_FEEDBACK = "sqlite:////var/lib/mnist/feedback.db"  # the volume feedback-data, mounted at /var/lib/mnist


def feedback_url(variables: dict) -> str:
    """The backend's MNIST_FEEDBACK_URL: the inventory's, else the database service's when it runs, else SQLite."""
    if variables.get("mnist_stack_feedback_url"):
        return str(variables["mnist_stack_feedback_url"])
    if is_on(variables.get("mnist_stack_database_enabled")):
        return f"postgresql+psycopg://mnist@database:{variables.get('mnist_stack_database_port', 5432)}/feedback"
    return SQLITE_FEEDBACK
