"""The stack's settings rules, declared once: Invoke's renderer checks them on the controller before rendering, and
the role's validate.yml applies the same functions (through filters) before a host changes.

Each function takes one host's variables (a mapping with the role's defaults applied) and returns the problems
found, as sentences naming the variable and what to do; none means the host may be deployed.
"""

from __future__ import annotations

import re

from ansible_collections.mnist.deploy.plugins.module_utils import alerting
from ansible_collections.mnist.deploy.plugins.module_utils.services import PUBLISHABLE, WITH_PASSWORD, is_on

# Environments whose secrets must be real: a default or short password is refused there.
GUARDED_ENVS = ("staging", "production")
MIN_PASSWORD_LENGTH = 12
DEFAULT_PASSWORDS = ("admin", "password", "changeme", "change-me", "grafana", "postgres", "secret", "placeholder")


def secret_problems(variables: dict) -> list:
    """Each enabled service's password (services.py) and the proxy's certificate and key. No value is ever quoted."""
    env = variables.get("mnist_stack_env")
    where = f"inventories/{env}/group_vars/all/vault.yml (ansible-vault encrypt)"
    problems = []
    for service in WITH_PASSWORD:
        if not is_on(variables.get(service.enabled_by)):
            continue
        password = str(variables.get(service.vault_variable) or "")
        if not password:
            problems.append(f"{service.vault_variable} is required when {service.name} is enabled: set it in {where}")
        elif env in GUARDED_ENVS and (len(password) < MIN_PASSWORD_LENGTH or password.lower() in DEFAULT_PASSWORDS):
            problems.append(
                f"{service.vault_variable} is too short (< {MIN_PASSWORD_LENGTH}) or a default in {env}: "
                f"set a real one in {where}"
            )
    if is_on(variables.get("mnist_stack_proxy_enabled")):
        certificate = str(variables.get("mnist_stack_tls_certificate") or "")
        key = str(variables.get("mnist_stack_tls_private_key") or "")
        if "-----BEGIN CERTIFICATE-----" not in certificate or not re.search(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----", key
        ):
            problems.append(
                "mnist_stack_proxy_enabled needs mnist_stack_tls_certificate and mnist_stack_tls_private_key (PEM): "
                f"set them in {where}; `invoke sandbox.up` writes the sandbox's"
            )
    return problems


def layout_problems(variables: dict) -> list:
    """Replicas, published ports and kept releases."""
    problems = []
    for service in PUBLISHABLE:
        replicas = int(variables.get(f"mnist_stack_{service}_replicas", 1) or 1)
        if is_on(variables.get(f"mnist_stack_{service}_published")) and replicas > 1:
            problems.append(f"{service} has several replicas and a published port: they would clash")
    try:
        keep = int(variables.get("mnist_stack_keep_releases", 2))
    except (TypeError, ValueError):
        keep = 0
    if keep < 2:
        problems.append("mnist_stack_keep_releases must keep at least the current and the previous release (>= 2)")
    return problems


def alerting_problems(variables: dict) -> list:
    """Receivers, routes and e-mail relay of Alertmanager (module_utils/alerting.py), when it runs."""
    return alerting.problems(variables) if is_on(variables.get("mnist_stack_alertmanager_enabled")) else []


def problems(variables: dict) -> list:
    return secret_problems(variables) + layout_problems(variables) + alerting_problems(variables)
