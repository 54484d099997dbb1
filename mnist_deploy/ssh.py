"""One ssh_config per environment, written from its inventory: Ansible and testinfra both connect with it.

With `mnist_bastion_mode: through` every host is reached with ProxyJump through the bastion; with `on` (Ansible
runs on the bastion itself) the hosts are reached directly.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from mnist_deploy import render
from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError

BASTION_MODES = ("through", "on")


def config_path(env: str, out_root: Path = render.BUILD) -> Path:
    return out_root / "ssh" / env / "config"


def _path(value: str) -> Path:
    path = Path(value).expanduser()
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
        mode = variables.get("mnist_bastion_mode", "through")
        if mode not in BASTION_MODES:
            raise DeployError(f"{env}/{host}: mnist_bastion_mode is {mode!r}; choose one of {', '.join(BASTION_MODES)}")
        common = [
            f"  IdentityFile {_path(variables['mnist_ssh_identity_file'])}",
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
        if variables.get("mnist_bastion_mode", "through") == "through":
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
