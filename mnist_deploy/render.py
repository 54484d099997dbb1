"""Render the stack's files for every host of an inventory, deterministically, and validate them.

Variables are read the way Ansible reads them: role defaults (roles/mnist_stack/defaults/main.yml), under the
inventory's group_vars and host_vars as `ansible-inventory` resolves them, under extra vars.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jinja2
import yaml

from app.mnist import store
from mnist_deploy import images, provision
from mnist_deploy.collection import alerting, services
from mnist_deploy.environment import BUILD, INVENTORIES, ROLE_DEFAULTS, ROOT, Environment, environments
from mnist_deploy.errors import DeployError
from mnist_deploy.shell import console, run

TEMPLATES = ROOT / "templates"
__all__ = ["BUILD", "INVENTORIES", "ROLE_DEFAULTS", "ROOT", "environments", "render"]

# template → output path, relative to the host's folder. The proxy's and Prometheus's files are rendered first:
# compose.yaml mounts each set from a folder named after its hash, outside the release's folder, so that a release
# that changes neither keeps those services running.
PROXY_FILES = {"proxy/haproxy.cfg.j2": "proxy/haproxy.cfg"}
PROMETHEUS_FILES = {
    "prometheus/prometheus.yml.j2": "prometheus/prometheus.yml",
    "prometheus/rules.yml": "prometheus/rules.yml",
    "prometheus/declared.yml.j2": "prometheus/declared.yml",
    "prometheus/rules_test.yml": "prometheus/rules_test.yml",
}
# Made from the inventory by the collection's alerting.py (not a template): its receivers' secrets are files the
# deploy installs beside it.
ALERTMANAGER_CONFIG = "alertmanager/alertmanager.yml"
FILES = {"compose.yaml.j2": "compose.yaml"}
GRAFANA_FILES = {
    "grafana/provisioning/datasources/prometheus.yml.j2": "grafana/provisioning/datasources/prometheus.yml",
    "grafana/provisioning/dashboards/dashboards.yml": "grafana/provisioning/dashboards/dashboards.yml",
    "grafana/dashboards/mnist.json": "grafana/dashboards/mnist.json",
}


def default_image_tag(model_dir: Path = ROOT / "models") -> str:
    return images.release_tag(store.current_version(model_dir))


def render(env: str, extra: dict[str, Any] | None = None, out_root: Path = BUILD, validate: bool = True) -> Path:
    """Write out_root/ENV/<host>/… and out_root/ENV/manifest.json; return the environment's folder."""
    extra = dict(extra or {})
    extra.setdefault("mnist_stack_image_tag", default_image_tag())
    hosts = {name: host.variables for name, host in Environment.read(env, extra).checked().hosts.items()}
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
    for host, variables in hosts.items():
        host_dir = env_dir / host
        variables.update(image_refs)
        variables["feedback_url"] = services.feedback_url(variables)
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
        if variables["mnist_stack_alertmanager_enabled"]:
            hashes |= render_alertmanager(host_dir, variables, where)
        rest = {**FILES, **(GRAFANA_FILES if variables["mnist_stack_grafana_enabled"] else {})}
        hashes |= render_files(jinja, rest, host_dir, variables, where)
        manifest["hosts"][host] = {"project": variables["mnist_stack_project"], "files": hashes}
    if validate:
        validate_once({env_dir / host: variables for host, variables in hosts.items()}, validated_stamp(env, out_root))
    (env_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return env_dir


def render_alertmanager(host_dir: Path, variables: dict[str, Any], where: str) -> dict[str, str]:
    """alertmanager.yml from the inventory, and the fingerprint of the folder it is installed in (its file and its
    receivers' secrets: a changed secret restarts Alertmanager, an unchanged release keeps it). In development the
    stack mounts this folder itself, so the secrets are written here too (the developer's own values)."""
    target = host_dir / ALERTMANAGER_CONFIG
    target.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Rendered by `invoke render` for {where} from the inventory (mnist_stack_alert_*). Do not edit.\n"
    target.write_text(header + yaml.safe_dump(alerting.config(variables), sort_keys=False, width=120))
    hashes = {ALERTMANAGER_CONFIG: hashlib.sha256(target.read_bytes()).hexdigest()}
    digest = hashlib.sha256(files_fingerprint(hashes).encode())
    digest.update(alerting.secrets_digest(variables).encode())
    variables["alertmanager_fingerprint"] = digest.hexdigest()[:16]
    (host_dir / "alertmanager" / "fingerprint").write_text(variables["alertmanager_fingerprint"] + "\n")
    if variables["mnist_stack_dev_mode"]:
        for name, content in alerting.secret_files(variables).items():
            secret = host_dir / "alertmanager" / "secrets" / name
            secret.parent.mkdir(exist_ok=True)
            secret.write_text(content + "\n")
    for severity in alerting.unrouted(variables) if variables["mnist_stack_env"] in ("staging", "production") else []:
        console.print(f"[yellow]warning[/]: {where}: {severity} alerts reach no one (mnist_stack_alert_routes)")
    return hashes


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


PROMETHEUS_CHECKED = {
    "check config": ("prometheus.yml",),
    "check rules": ("rules.yml", "declared.yml"),
    "test rules": ("rules_test.yml",),
}


def validate_host(host_dir: Path, variables: dict[str, Any]) -> None:
    validate_hosts({host_dir: variables})


def rendered_digest(hosts: dict[Path, dict[str, Any]]) -> str:
    """What validation depends on: every rendered file's path and content, and the values validate_compose reads."""
    digest = hashlib.sha256()
    for host_dir, variables in sorted(hosts.items()):
        digest.update(
            f"{host_dir.name} {variables['mnist_stack_project']} {variables['mnist_stack_grafana_enabled']}\n".encode()
        )
        for path in sorted(path for path in host_dir.rglob("*") if path.is_file()):
            digest.update(f"{path.relative_to(host_dir)} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def validated_stamp(env: str, out_root: Path = BUILD) -> Path:
    """Where the digest of ENV's last validated files is kept."""
    return out_root / ".validated" / env


def validate_once(hosts: dict[Path, dict[str, Any]], stamp: Path) -> None:
    """validate_hosts, unless STAMP says these very files passed it: a redeploy renders the same files, and their
    compose and promtool checks took 1-2 s of every no-op deploy; a bastion has neither tool."""
    digest = rendered_digest(hosts)
    if stamp.is_file() and stamp.read_text() == digest:
        return  # a bastion gets the stamp of the files its controller validated (mnist_deploy/bastion.py)
    provision.require("prometheus", console.print)  # promtool
    provision.require("alertmanager", console.print)  # amtool
    validate_hosts(hosts)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def validate_hosts(hosts: dict[Path, dict[str, Any]]) -> None:
    """docker compose config for each host (at once), promtool check config / check rules / test rules once for
    every host's files, amtool check-config for Alertmanager's, and JSON for dashboards (the caller has made sure
    promtool and amtool are installed)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        for done in [pool.submit(validate_compose, host_dir, variables) for host_dir, variables in hosts.items()]:
            done.result()
    for check, names in PROMETHEUS_CHECKED.items():
        files = [host_dir / "prometheus" / name for host_dir in hosts for name in names]
        run(["promtool", *check.split(), *files], quiet=True)
    alertmanager = [host_dir / ALERTMANAGER_CONFIG for host_dir in hosts if (host_dir / ALERTMANAGER_CONFIG).is_file()]
    if alertmanager:
        run(["amtool", "check-config", *alertmanager], quiet=True)
    for host_dir in hosts:
        for dashboard in (host_dir / "grafana").rglob("*.json") if (host_dir / "grafana").is_dir() else []:
            try:
                json.loads(dashboard.read_text())
            except json.JSONDecodeError as exc:
                raise DeployError(f"{dashboard} is not valid JSON: {exc}") from exc


def validate_compose(host_dir: Path, variables: dict[str, Any]) -> None:
    compose_env = {**os.environ, "COMPOSE_PROJECT_NAME": variables["mnist_stack_project"]}
    secrets = host_dir / "secrets"
    needed = services.password_files(variables)
    for name in needed:  # compose checks that secret files exist; placeholders stand in while validating
        secrets.mkdir(exist_ok=True)
        (secrets / name).write_text("placeholder\n")
    try:
        run(["docker", "compose", "-f", host_dir / "compose.yaml", "config", "--quiet"], quiet=True, env=compose_env)
    finally:
        if needed:
            shutil.rmtree(secrets)
