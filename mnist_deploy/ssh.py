"""One ssh_config per environment, written from its inventory: Ansible and testinfra both connect with it.

With `mnist_bastion_mode: through` every host is reached with ProxyJump through the bastion; with `on` (Ansible
runs on the bastion itself) the hosts are reached directly. The mode is chosen where the toolkit runs, not in the
committed inventory: $MNIST_BASTION_MODE, which `invoke bastion.run` sets on the bastion, overrides the inventory's.
"""

from __future__ import annotations

import os
import shlex
import socket
import tempfile
from pathlib import Path
from typing import Any

from mnist_deploy import render
from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError
from mnist_deploy.shell import run

BASTION_MODES = ("through", "on")
MODE_ENV = "MNIST_BASTION_MODE"


def bastion_mode(variables: dict[str, Any]) -> str:
    """How a host is reached from here: $MNIST_BASTION_MODE, else the inventory's mnist_bastion_mode (through)."""
    return os.environ.get(MODE_ENV) or str(variables.get("mnist_bastion_mode", "through"))


def config_path(env: str, out_root: Path = render.BUILD) -> Path:
    return out_root / "ssh" / env / "config"


def identity_file(variables: dict[str, Any]) -> Path:
    """The SSH key a host's variables name (mnist_ssh_identity_file: relative paths start at the project)."""
    path = Path(str(variables["mnist_ssh_identity_file"])).expanduser()
    return path if path.is_absolute() else render.ROOT / path


def known_hosts_path(env: str, out_root: Path = render.BUILD) -> Path:
    return out_root / "ssh" / env / "known_hosts"


def config_text(env: str, hostvars: dict[str, dict[str, Any]], out_root: Path = render.BUILD) -> str:
    known_hosts = known_hosts_path(env, out_root)
    blocks = []
    bastion_written = False
    for host, variables in sorted(hostvars.items()):
        if variables.get("ansible_connection") == "local":
            raise DeployError(f"{env}/{host} is a local host: there is nothing to reach over SSH")
        mode = bastion_mode(variables)
        if mode not in BASTION_MODES:
            raise DeployError(
                f"{env}/{host}: the bastion mode is {mode!r} ({MODE_ENV} or mnist_bastion_mode); "
                f"choose one of {', '.join(BASTION_MODES)}"
            )
        common = [
            f"  IdentityFile {identity_file(variables)}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {known_hosts}",
            f"  StrictHostKeyChecking {variables.get('mnist_ssh_strict_host_key_checking', 'yes')}",
            "  ServerAliveInterval 15",
        ]
        if mode == "through" and not bastion_written:
            blocks.append(
                "\n".join(
                    [
                        f"Host mnist-bastion-{env}",
                        f"  HostName {variables['mnist_bastion_host']}",
                        f"  Port {variables.get('mnist_bastion_port', 22)}",
                        f"  User {variables['mnist_bastion_user']}",
                        f"  HostKeyAlias mnist-bastion-{env}",
                        *common,
                    ]
                )
            )
            bastion_written = True
        address = variables.get("ansible_host", host)
        names = " ".join(dict.fromkeys([host, address]))
        lines = [
            f"Host {names}",
            f"  HostName {address}",
            f"  Port {variables.get('ansible_port', 22)}",
            f"  User {variables.get('ansible_user', 'deploy')}",
            f"  HostKeyAlias {host}",
            *common,
        ]
        if mode == "through":
            lines.append(f"  ProxyJump mnist-bastion-{env}")
        blocks.append("\n".join(lines))
    return f"# Written by invoke from inventories/{env}; do not edit.\n" + "\n\n".join(blocks) + "\n"


def write_config(env: str, out_root: Path = render.BUILD, hostvars: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write ENV's ssh_config; HOSTVARS spares reading the inventory again when the caller already has it."""
    hostvars = Environment.read(env).hostvars if hostvars is None else hostvars
    path = config_path(env, out_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(env, hostvars, out_root))
    return path


def bastion_endpoint(env: str, hostvars: dict[str, dict[str, Any]]) -> tuple[str, int] | None:
    """The bastion's address and port when the hosts are reached through it; None when Ansible runs on it."""
    for variables in hostvars.values():
        if bastion_mode(variables) == "through":
            return str(variables["mnist_bastion_host"]), int(variables.get("mnist_bastion_port", 22))
    return None


def check_bastion(env: str, hostvars: dict[str, dict[str, Any]], timeout: float = 10) -> None:
    """Fail naming the bastion when it does not answer as an SSH server, before any host is touched.

    Only the server's greeting is read (no login): a bastion that allows nothing but jumps passes too.
    """
    endpoint = bastion_endpoint(env, hostvars)
    if endpoint is None:
        return
    host, port = endpoint
    where = f"the bastion mnist-bastion-{env} ({host}:{port})"
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            greeting = conn.recv(256)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DeployError(f"{where} cannot be reached: {reason}. Nothing was changed on any host.") from exc
    if not greeting.startswith(b"SSH-"):
        said = "closed the connection" if not greeting else f"answered {greeting[:40]!r}, not an SSH greeting"
        raise DeployError(f"{where} cannot be reached: it {said}. Nothing was changed on any host.")


def keyed(scan: str, name: str) -> list[str]:
    """`ssh-keyscan` output's key lines, each keyed by NAME (the HostKeyAlias the ssh_config gives that host) instead
    of the address and port scanned: ssh looks a host's key up by its alias."""
    lines = []
    for line in scan.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not line.startswith("#"):
            lines.append(" ".join([name, *fields[1:3]]))
    return lines


def _scan(command: list[str]) -> str:
    """What a key scan printed; '' when it failed (the caller names the host)."""
    try:
        return run(command, quiet=True)
    except DeployError:
        return ""


def scan_host_keys(env: str, hostvars: dict[str, dict[str, Any]], timeout: int = 10) -> dict[str, list[str]]:
    """Every host's SSH keys as known_hosts lines keyed by the ssh_config's names: the bastion's scanned from here,
    the others' from the bastion (`ssh-keyscan` run there over an SSH session that verifies the bastion's scanned
    key), or from here when Ansible runs on the bastion. A host that gives no key is an error naming it."""
    config = write_config(env, hostvars=hostvars)
    found: dict[str, list[str]] = {}
    endpoint = bastion_endpoint(env, hostvars)
    bastion = f"mnist-bastion-{env}"
    scan = ["ssh-keyscan", "-T", str(timeout)]
    with tempfile.NamedTemporaryFile("w", prefix="known_hosts-", suffix=f"-{env}") as trusted:
        if endpoint is not None:
            address, port = endpoint
            found[bastion] = keyed(_scan([*scan, "-p", str(port), address]), bastion)
            trusted.write("\n".join(found[bastion]) + "\n")
            trusted.flush()
        for host, variables in sorted(hostvars.items()):
            command = [*scan, "-p", str(variables.get("ansible_port", 22)), str(variables.get("ansible_host", host))]
            if bastion_mode(variables) == "through" and found.get(bastion):
                ssh = ["ssh", "-F", str(config), "-o", f"UserKnownHostsFile={trusted.name}"]
                command = [*ssh, "-o", "StrictHostKeyChecking=yes", bastion, shlex.join(command)]
            found[host] = keyed(_scan(command), host)
    missing = sorted(name for name, lines in found.items() if not lines)
    if missing:
        raise DeployError(f"no SSH host key from {', '.join(missing)} (unreachable, or no ssh-keyscan on the bastion)")
    return found


def fingerprints(lines: list[str]) -> list[str]:
    """`ssh-keygen -l` of known_hosts LINES: 'SHA256:… (ED25519)' each, for the operator to compare."""
    with tempfile.NamedTemporaryFile("w", suffix=".pub") as keys:
        keys.write("\n".join(lines) + "\n")
        keys.flush()
        out = run(["ssh-keygen", "-l", "-f", keys.name], quiet=True)
    return [" ".join((fields[1], fields[-1])) for fields in (line.split() for line in out.splitlines()) if fields]


def store_known_hosts(env: str, found: dict[str, list[str]], out_root: Path = render.BUILD) -> Path:
    """Write FOUND into ENV's known_hosts, replacing what it held for those names and keeping the others."""
    path = known_hosts_path(env, out_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = []
    if path.is_file():
        kept = [line for line in path.read_text().splitlines() if line.split(" ", 1)[0] not in found]
    path.write_text("\n".join([*kept, *(line for lines in found.values() for line in lines)]) + "\n")
    return path
