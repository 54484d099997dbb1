"""One environment, read once: its inventory (through `ansible-inventory`, as Ansible itself resolves it) into typed
hosts, each with the stack's variables — role defaults (roles/mnist_stack/defaults/main.yml) under the inventory's
group_vars and host_vars under extra vars, resolved — and the services it runs with their ports, replicas and what
they publish (the services as the project's Ansible collection declares them). The settings rules are the
collection's, which the playbooks apply too. Render, ssh, stack, sandbox, deploy and tests/infra take it.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from mnist_deploy import vault
from mnist_deploy.collection import rules, services
from mnist_deploy.errors import DeployError

ROOT = Path(__file__).resolve().parent.parent
INVENTORIES = ROOT / "inventories"
ROLE_DEFAULTS = ROOT / "roles" / "mnist_stack" / "defaults" / "main.yml"
BUILD = ROOT / "build"


@dataclass(frozen=True)
class Service:
    """One service as a host runs it."""

    name: str
    replicas: int
    port: int | None  # inside the container (None for the proxy, which has two)
    published: tuple[tuple[str, int], ...] = ()  # (address, host port) it listens on, on the host


@dataclass(frozen=True)
class Host:
    name: str
    inventory: dict[str, Any]  # the inventory's own values for the host (connection settings included)
    variables: dict[str, Any] = field(repr=False)  # the stack's: defaults < inventory < extra, resolved

    @property
    def services(self) -> dict[str, Service]:
        """The services this host runs, by name, in the collection's order."""
        v = self.variables
        found = {}
        for name in services.enabled(v):
            published: tuple[tuple[str, int], ...] = ()
            if name == "proxy":
                address = str(v["mnist_stack_proxy_bind_address"])
                ports = (v["mnist_stack_proxy_http_host_port"], v["mnist_stack_proxy_https_host_port"])
                published = tuple((address, int(port)) for port in ports)
            elif services.BY_NAME[name].publishable and services.is_on(v.get(f"mnist_stack_{name}_published")):
                port = v.get(f"mnist_stack_{name}_host_port") or v[f"mnist_stack_{name}_port"]
                published = ((str(v["mnist_stack_bind_address"]), int(port)),)
            found[name] = Service(
                name,
                replicas=int(v.get(f"mnist_stack_{name}_replicas", 1)),
                port=int(v[f"mnist_stack_{name}_port"]) if f"mnist_stack_{name}_port" in v else None,
                published=published,
            )
        return found


@dataclass(frozen=True)
class Environment:
    name: str
    hosts: dict[str, Host]

    @classmethod
    def read(cls, name: str, extra: dict[str, Any] | None = None) -> Environment:
        """ENV's hosts from its inventory (read once per process while its files are unchanged), EXTRA on top."""
        defaults = yaml.safe_load(ROLE_DEFAULTS.read_text())
        hosts = {}
        for host, inventory in inventory_hostvars(name).items():
            merged = {**defaults, **inventory, **(extra or {}), "inventory_hostname": host, "source_dir": str(ROOT)}
            hosts[host] = Host(host, inventory, resolve(merged))
        return cls(name, hosts)

    @property
    def hostvars(self) -> dict[str, dict[str, Any]]:
        """Each host's inventory values: what ssh_config is written from."""
        return {name: host.inventory for name, host in self.hosts.items()}

    def checked(self) -> Environment:
        """This environment, once every host passes the stack's rules; DeployError naming the first that fails."""
        for name, host in self.hosts.items():
            check_required(self.name, name, host.variables)
        return self


def environments() -> list[str]:
    return sorted(p.name for p in INVENTORIES.iterdir() if (p / "hosts.yml").is_file())


_INVENTORIES_READ: dict[tuple[str, tuple[tuple[str, float], ...]], dict[str, dict[str, Any]]] = {}


def inventory_hostvars(env: str) -> dict[str, dict[str, Any]]:
    """Every host of ENV with its variables, as Ansible itself resolves the inventory: read once per process while
    its files are unchanged (a deploy renders, then runs playbooks, from the same reading)."""
    if env not in environments():
        raise DeployError(f"unknown environment {env!r}; known: {', '.join(environments())}")
    files = tuple(sorted((str(p), p.stat().st_mtime) for p in (INVENTORIES / env).rglob("*") if p.is_file()))
    if (env, files) not in _INVENTORIES_READ:
        _INVENTORIES_READ[(env, files)] = read_inventory(env)
    return copy.deepcopy(_INVENTORIES_READ[(env, files)])


def read_inventory(env: str) -> dict[str, dict[str, Any]]:
    command = [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(INVENTORIES / env), "--list"]
    try:
        proc = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,  # Ansible refuses a non-blocking stdin (ssh elsewhere may have made it one)
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False"},
        )
    except FileNotFoundError as exc:
        raise DeployError("ansible-inventory is missing: install the project's requirements (make venv)") from exc
    if proc.returncode != 0:
        raise DeployError(f"ansible-inventory failed for {env}: {proc.stderr.strip()[-1000:]}")
    inventory = json.loads(proc.stdout)
    hostvars: dict[str, dict[str, Any]] = inventory.get("_meta", {}).get("hostvars", {})
    hosts = sorted(
        set(hostvars)
        | set(inventory.get("all", {}).get("hosts", []))
        | {h for group in inventory.values() if isinstance(group, dict) for h in group.get("hosts", [])}
    )
    if not hosts:
        raise DeployError(f"inventory {env} has no hosts")
    return vault.decrypt_inline({host: hostvars.get(host, {}) for host in hosts}, str(ROOT))


def resolve(variables: dict[str, Any]) -> dict[str, Any]:
    """Expand `{{ }}` in string values, those inside lists and mappings too, against the other variables, as Ansible
    does lazily (a receiver's `slack_url: "{{ vault_slack_url }}"`, say)."""
    # bandit B701: YAML values, not HTML
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)  # nosec B701
    resolved = dict(variables)

    def expand(value: Any) -> Any:
        if isinstance(value, str) and "{{" in value:
            return env.from_string(value).render(resolved)
        if isinstance(value, dict):
            return {k: expand(v) for k, v in value.items()}
        if isinstance(value, list):
            return [expand(v) for v in value]
        return value

    for _ in range(5):
        changed = False
        for key, value in resolved.items():
            try:
                new = expand(value)
            except jinja2.UndefinedError as exc:
                raise DeployError(f"variable {key}: {exc.message}") from exc
            changed |= new != value
            resolved[key] = new
        if not changed:
            return resolved
    raise DeployError("variables refer to each other in a loop")


def check_required(env: str, host: str, variables: dict[str, Any]) -> dict[str, Any]:
    if variables.get("mnist_stack_env") != env:
        raise DeployError(f"{env}/{host}: mnist_stack_env is {variables.get('mnist_stack_env')!r}, expected {env!r}")
    if not variables.get("mnist_stack_image_tag"):
        raise DeployError(f"{env}/{host}: mnist_stack_image_tag is required (invoke build sets it)")
    found = rules.problems(variables)  # the rules the playbooks apply too (the project's Ansible collection)
    if found:
        raise DeployError(f"{env}/{host}: {'; '.join(found)}")
    return variables
