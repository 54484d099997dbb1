"""Render the stack's files for every host of an inventory, deterministically, and validate them.

Variables are read the way Ansible reads them: role defaults (roles/mnist_stack/defaults/main.yml), under the
inventory's group_vars and host_vars as `ansible-inventory` resolves them, under extra vars.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jinja2
import yaml

from app.mnist import store
from mnist_deploy import images, provision
from mnist_deploy.collection import rules
from mnist_deploy.errors import DeployError
from mnist_deploy.shell import console, run

ROOT = Path(__file__).resolve().parent.parent
INVENTORIES = ROOT / "inventories"
TEMPLATES = ROOT / "templates"
ROLE_DEFAULTS = ROOT / "roles" / "mnist_stack" / "defaults" / "main.yml"
BUILD = ROOT / "build"

# template → output path, relative to the host's folder. The proxy's and Prometheus's files are rendered first:
# compose.yaml mounts each set from a folder named after its hash, outside the release's folder, so that a release
# that changes neither keeps those services running.
PROXY_FILES = {"proxy/haproxy.cfg.j2": "proxy/haproxy.cfg"}
PROMETHEUS_FILES = {
    "prometheus/prometheus.yml.j2": "prometheus/prometheus.yml",
    "prometheus/rules.yml": "prometheus/rules.yml",
    "prometheus/rules_test.yml": "prometheus/rules_test.yml",
}
FILES = {"compose.yaml.j2": "compose.yaml"}
GRAFANA_FILES = {
    "grafana/provisioning/datasources/prometheus.yml.j2": "grafana/provisioning/datasources/prometheus.yml",
    "grafana/provisioning/dashboards/dashboards.yml": "grafana/provisioning/dashboards/dashboards.yml",
    "grafana/dashboards/mnist.json": "grafana/dashboards/mnist.json",
}


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
    return {host: hostvars.get(host, {}) for host in hosts}


def resolve(variables: dict[str, Any]) -> dict[str, Any]:
    """Expand `{{ }}` in string values against the other variables, as Ansible does lazily."""
    # bandit B701: YAML values, not HTML
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)  # nosec B701
    resolved = dict(variables)
    for _ in range(5):
        changed = False
        for key, value in resolved.items():
            if isinstance(value, str) and "{{" in value:
                try:
                    new = env.from_string(value).render(resolved)
                except jinja2.UndefinedError as exc:
                    raise DeployError(f"variable {key}: {exc.message}") from exc
                changed |= new != value
                resolved[key] = new
        if not changed:
            return resolved
    raise DeployError("variables refer to each other in a loop")


def host_variables(env: str, extra: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    defaults = yaml.safe_load(ROLE_DEFAULTS.read_text())
    result = {}
    for host, inventory_vars in inventory_hostvars(env).items():
        merged = {**defaults, **inventory_vars, **(extra or {}), "inventory_hostname": host, "source_dir": str(ROOT)}
        result[host] = check_required(env, host, resolve(merged))
    return result


def check_required(env: str, host: str, variables: dict[str, Any]) -> dict[str, Any]:
    if variables.get("mnist_stack_env") != env:
        raise DeployError(f"{env}/{host}: mnist_stack_env is {variables.get('mnist_stack_env')!r}, expected {env!r}")
    if not variables.get("mnist_stack_image_tag"):
        raise DeployError(f"{env}/{host}: mnist_stack_image_tag is required (invoke build sets it)")
    found = rules.problems(variables)  # the rules the playbooks apply too (the project's Ansible collection)
    if found:
        raise DeployError(f"{env}/{host}: {'; '.join(found)}")
    return variables


def default_image_tag(model_dir: Path = ROOT / "models") -> str:
    return images.release_tag(store.current_version(model_dir))


def render(env: str, extra: dict[str, Any] | None = None, out_root: Path = BUILD, validate: bool = True) -> Path:
    """Write out_root/ENV/<host>/… and out_root/ENV/manifest.json; return the environment's folder."""
    extra = dict(extra or {})
    extra.setdefault("mnist_stack_image_tag", default_image_tag())
    hosts = host_variables(env, extra)
    # bandit B701: the templates are YAML and JSON, not HTML.
    jinja = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )  # nosec B701
    env_dir = out_root / env
    shutil.rmtree(env_dir, ignore_errors=True)
    manifest: dict[str, Any] = {"env": env, "image_tag": extra["mnist_stack_image_tag"], "hosts": {}}
    # Every image's name comes from images.ref: tagged by the release, the code alone or the recipe.
    image_refs = {
        f"{service}_image": images.ref(service, extra["mnist_stack_image_tag"]) for service in images.SERVICES
    }
    if validate:
        provision.require("prometheus", console.print)  # promtool, once per render
    for host, variables in hosts.items():
        host_dir = env_dir / host
        variables.update(image_refs)
        where = f"{env}/{host}"
        hashes: dict[str, str] = {}
        # The deploy installs these files in a folder named after their fingerprint (tasks/install.yml of the role).
        if variables["mnist_stack_proxy_enabled"]:
            hashes |= render_files(jinja, PROXY_FILES, host_dir, variables, where)
            variables["proxy_fingerprint"] = proxy_fingerprint((host_dir / "proxy/haproxy.cfg").read_bytes(), variables)
            (host_dir / "proxy" / "fingerprint").write_text(variables["proxy_fingerprint"] + "\n")
        hashes |= render_files(jinja, PROMETHEUS_FILES, host_dir, variables, where)
        variables["prometheus_fingerprint"] = files_fingerprint({f: hashes[f] for f in PROMETHEUS_FILES.values()})
        (host_dir / "prometheus" / "fingerprint").write_text(variables["prometheus_fingerprint"] + "\n")
        rest = {**FILES, **(GRAFANA_FILES if variables["mnist_stack_grafana_enabled"] else {})}
        hashes |= render_files(jinja, rest, host_dir, variables, where)
        manifest["hosts"][host] = {"project": variables["mnist_stack_project"], "files": hashes}
    if validate:
        validate_hosts({env_dir / host: variables for host, variables in hosts.items()})
    (env_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return env_dir


def render_files(
    jinja: jinja2.Environment, files: dict[str, str], host_dir: Path, variables: dict[str, Any], where: str
) -> dict[str, str]:
    """Render (*.j2) or copy each template to its output under HOST_DIR; return output → sha256 of its content."""
    hashes = {}
    for template, output in files.items():
        target = host_dir / output
        target.parent.mkdir(parents=True, exist_ok=True)
        if template.endswith(".j2"):
            try:
                target.write_text(jinja.get_template(template).render(variables, vars=variables))
            except jinja2.UndefinedError as exc:
                raise DeployError(f"{where}: {template}: {exc.message}") from exc
        else:
            shutil.copyfile(TEMPLATES / template, target)
        hashes[output] = hashlib.sha256(target.read_bytes()).hexdigest()
    return hashes


def proxy_fingerprint(config: bytes, variables: dict[str, Any]) -> str:
    """What the proxy container is made of besides its image: its config and its certificate (public; the key
    changes with it). A release that changes neither leaves the running proxy alone."""
    digest = hashlib.sha256(config)
    digest.update(str(variables["mnist_stack_tls_certificate"]).encode())
    return digest.hexdigest()[:16]


def files_fingerprint(hashes: dict[str, str]) -> str:
    """One hash for a set of files (path → sha256 of the content): the name of the folder they are installed in."""
    digest = hashlib.sha256()
    for path in sorted(hashes):
        digest.update(f"{path} {hashes[path]}\n".encode())
    return digest.hexdigest()[:16]


PROMETHEUS_CHECKED = {"prometheus.yml": "check config", "rules.yml": "check rules", "rules_test.yml": "test rules"}


def validate_host(host_dir: Path, variables: dict[str, Any]) -> None:
    validate_hosts({host_dir: variables})


def validate_hosts(hosts: dict[Path, dict[str, Any]]) -> None:
    """docker compose config for each host (at once), promtool check config / check rules / test rules once for
    every host's files, and JSON for dashboards (the caller has made sure promtool is installed)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        for done in [pool.submit(validate_compose, host_dir, variables) for host_dir, variables in hosts.items()]:
            done.result()
    for name, check in PROMETHEUS_CHECKED.items():
        run(["promtool", *check.split(), *(host_dir / "prometheus" / name for host_dir in hosts)], quiet=True)
    for host_dir in hosts:
        for dashboard in (host_dir / "grafana").rglob("*.json") if (host_dir / "grafana").is_dir() else []:
            try:
                json.loads(dashboard.read_text())
            except json.JSONDecodeError as exc:
                raise DeployError(f"{dashboard} is not valid JSON: {exc}") from exc


def validate_compose(host_dir: Path, variables: dict[str, Any]) -> None:
    compose_env = {**os.environ, "COMPOSE_PROJECT_NAME": variables["mnist_stack_project"]}
    secrets = host_dir / "secrets"
    needs_secret = variables["mnist_stack_grafana_enabled"]
    if needs_secret:  # compose checks that secret files exist; a placeholder stands in while validating
        secrets.mkdir(exist_ok=True)
        (secrets / "grafana_admin_password").write_text("placeholder\n")
    try:
        run(["docker", "compose", "-f", host_dir / "compose.yaml", "config", "--quiet"], quiet=True, env=compose_env)
    finally:
        if needs_secret:
            shutil.rmtree(secrets)
