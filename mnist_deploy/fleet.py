"""Operating an environment's hosts from here: Fabric connections (paramiko underneath) through the bastion.

One connection layer for status, logs, exec, audit and tunnels. Each host is reached the way Ansible and testinfra
reach it: Fabric reads the environment's generated ssh_config (build/ssh/ENV/config: address, user, key, ProxyJump
through the bastion), so there is no second copy of those settings. Host keys are pinned: the environment's
known_hosts (`invoke known-hosts`) is the only source, an unknown key is refused instead of added (Fabric's default
adds any key) and a changed key is refused — for the bastion and every host. paramiko ignores HostKeyAlias, so the
pinned keys, which are stored under each host's alias, are handed to it under the address it connects to.

Hosts are asked in parallel; a host that cannot be reached is one clear line (which host, why, what to do), and the
others still answer. `dev` (an `ansible_connection: local` inventory) runs the same calls on this machine through
Invoke's own Context, which Fabric's Connection extends.
"""

from __future__ import annotations

import shlex
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import fabric
import invoke
import paramiko

from mnist_deploy import render, ssh
from mnist_deploy.environment import Environment, Host
from mnist_deploy.errors import DeployError

T = TypeVar("T")


class UnknownHostKey(paramiko.SSHException):
    """A server whose key is not pinned in the environment's known_hosts."""

    def __init__(self, alias: str, key: paramiko.PKey) -> None:
        self.alias, self.key = alias, key
        super().__init__(f"{alias}'s host key {key.get_name()} {key.fingerprint} is not pinned")


class Pinned(paramiko.MissingHostKeyPolicy):
    """Refuse any key the pinned known_hosts does not hold (paramiko raises BadHostKeyException on a changed one)."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise UnknownHostKey(self.alias, key)


def lookup_name(address: str, port: int) -> str:
    """The name paramiko looks a server's key up by (OpenSSH's known_hosts form)."""
    return address if int(port) == 22 else f"[{address}]:{port}"


def pin(connection: fabric.Connection, known: paramiko.HostKeys) -> fabric.Connection:
    """Make CONNECTION (and its gateways) accept only the keys KNOWN holds under its HostKeyAlias."""
    hop: Any = connection
    while isinstance(hop, fabric.Connection):
        alias = hop.ssh_config.get("hostkeyalias", hop.original_host)
        client_keys = hop.client.get_host_keys()
        for keytype, key in (known.lookup(alias) or {}).items():
            client_keys.add(lookup_name(hop.host, hop.port), keytype, key)
        hop.client.set_missing_host_key_policy(Pinned(alias))
        hop = hop.gateway
    return connection


def why(error: BaseException, env: str) -> str:
    """What went wrong reaching a host, and what to do about it, in one line."""
    pinned = f"build/ssh/{env}/known_hosts"
    if isinstance(error, UnknownHostKey):
        return (
            f"refused: {error.alias}'s host key ({error.key.get_name()} {error.key.fingerprint}) is not in {pinned}; "
            f"check it and pin it with `invoke known-hosts --env={env}`"
        )
    if isinstance(error, paramiko.BadHostKeyException):
        return (
            f"refused: the host key CHANGED ({error.key.get_name()} {error.key.fingerprint}, pinned "
            f"{error.expected_key.fingerprint}); if the server was rebuilt, check and re-pin it with "
            f"`invoke known-hosts --env={env}`, otherwise someone may be in the way"
        )
    if isinstance(error, paramiko.AuthenticationException):
        return f"refused: SSH login failed ({error})"
    if isinstance(error, paramiko.ChannelException):
        return f"unreachable from the bastion: {error.text or error}"
    if isinstance(error, invoke.exceptions.UnexpectedExit):
        said = (error.result.stderr or error.result.stdout or "").strip().splitlines()
        return f"`{error.result.command[:60]}` exited {error.result.exited}: {said[-1] if said else 'no output'}"
    if isinstance(error, invoke.exceptions.CommandTimedOut):
        return f"timed out after {error.timeout} s"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "unreachable: the connection timed out"
    if isinstance(error, OSError):
        return f"unreachable: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Outcome:
    """One host's answer, or why there is none."""

    host: str
    value: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


class Fleet:
    """ENV's hosts (all, or HOSTS), reachable from here."""

    def __init__(
        self,
        env: str,
        hosts: list[str] | None = None,
        become_password: str | None = None,
        timeout: int = 15,
        out_root: Path = render.BUILD,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.environment = Environment.read(env, extra)
        unknown = sorted(set(hosts or []) - set(self.environment.hosts))
        if unknown:
            raise DeployError(f"{env} has no host {', '.join(unknown)}; its hosts: {', '.join(self.environment.hosts)}")
        self.env = env
        self.hosts = {name: self.environment.hosts[name] for name in hosts or self.environment.hosts}
        self.become_password = become_password
        self.timeout = timeout
        self.out_root = out_root
        self.local = all(h.inventory.get("ansible_connection") == "local" for h in self.hosts.values())
        if not self.local:
            ssh.write_config(env, out_root, hostvars=self.environment.hostvars)
            known = ssh.known_hosts_path(env, out_root)
            self.known = paramiko.HostKeys(str(known)) if known.is_file() else paramiko.HostKeys()

    def home(self, host: Host) -> str:
        v = host.variables
        return f"{v['mnist_stack_root']}/{v['mnist_stack_project']}"

    @contextmanager
    def connect(self, name: str) -> Iterator[invoke.Context]:
        """A context to run commands on host NAME: a pinned Fabric connection, or the local machine for dev."""
        if self.local:
            yield invoke.Context()
            return
        config = fabric.Config(
            runtime_ssh_path=str(ssh.config_path(self.env, self.out_root)),
            overrides={
                "connect_kwargs": {"look_for_keys": False, "allow_agent": False},
                "timeouts": {"connect": self.timeout},
                "sudo": {"password": self.become_password},
                "run": {"hide": True},
            },
        )
        connection = pin(fabric.Connection(name, config=config), self.known)
        try:
            yield connection
        finally:
            gateway = connection.gateway
            connection.close()
            if isinstance(gateway, fabric.Connection):
                gateway.close()

    def sudo(self, context: invoke.Context, command: str, **kwargs: Any) -> invoke.Result:
        """COMMAND as root: on a host through sudo (its password when given, else `sudo -n`, which fails at once
        instead of waiting at a prompt); for dev as this user, who runs the local engine."""
        kwargs.setdefault("hide", True)
        if self.local:
            result = context.run(command, **kwargs)
        elif self.become_password is not None:
            result = context.sudo(command, **kwargs)
        else:
            result = context.run(f"sudo -n {command}", **kwargs)
        assert result is not None  # None only for asynchronous or disowned runs
        return result

    def each(self, work: Callable[[str, Host, invoke.Context], T], until_interrupted: bool = False) -> list[Outcome]:
        """WORK(name, host, context) on every host at once; each host's value or the line that says why not, in the
        hosts' order. The hosts' threads are daemons, so Ctrl-C is never stuck behind a host; UNTIL_INTERRUPTED
        (work that runs until the operator stops it: `logs --follow`) ends at Ctrl-C with the hosts that finished."""
        done: dict[str, Outcome] = {}

        def one(name: str) -> None:
            try:
                with self.connect(name) as context:
                    done[name] = Outcome(name, work(name, self.hosts[name], context))
            except (
                paramiko.SSHException,
                OSError,
                invoke.exceptions.Failure,
                invoke.exceptions.CommandTimedOut,
            ) as exc:
                done[name] = Outcome(name, error=why(exc, self.env))

        threads = [threading.Thread(target=one, args=(name,), daemon=True) for name in self.hosts]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)
        except KeyboardInterrupt:
            if not until_interrupted:
                raise
        return [done[name] for name in self.hosts if name in done]


def python_command(source: Path, *args: str) -> str:
    """A shell command that runs SOURCE with the host's python3 (no file left on the host)."""
    return shlex.join(["python3", "-c", source.read_text(), *args])
