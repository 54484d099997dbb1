"""What an operator asks of a running environment, through the fleet's connections (mnist_deploy/fleet.py):
status, logs, exec, audit and tunnels. The judgements (is a host healthy, how audit logs merge) are pure functions
of what the hosts answered, unit-tested without hosts.
"""

from __future__ import annotations

import io
import json
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import invoke
from rich.table import Table

from app.mnist.corrections import Corrections, CorrectionsError, loads
from mnist_deploy import probe
from mnist_deploy.environment import Host
from mnist_deploy.errors import DeployError
from mnist_deploy.fleet import Fleet, python_command

PROBE = Path(probe.__file__)
# HAProxy's `show servers state`: operational state 2 is running; admin state bits 0x01/0x02/0x04 are maintenance
# forced, inherited or set by a drain, 0x08 a slot DNS left unassigned, 0x20 one whose address is being resolved.
RUNNING, MAINTENANCE = 2, 0x01 | 0x02 | 0x04


@dataclass
class HostStatus:
    host: str
    release: str = "-"
    model_version: str = "-"
    services: list[tuple[str, int, int, str, int]] = field(
        default_factory=list
    )  # name, running, expected, health, restarts
    backends: str = "-"
    disk: str = "-"
    lock: str = "-"
    problems: list[str] = field(default_factory=list)


def backends_up(slots: list[list[Any]]) -> int:
    """The proxy's backend slots that serve: running and in no maintenance."""
    return sum(1 for _, op_state, admin in slots if int(op_state) == RUNNING and not int(admin) & MAINTENANCE)


def host_status(host: Host, answer: dict[str, Any], now: float | None = None) -> HostStatus:
    """A host's state from its probe ANSWER, judged against what the environment says it runs."""
    status = HostStatus(host.name)
    for part, error in sorted((answer.get("errors") or {}).items()):
        status.problems.append(f"{part}: {error}")
    release = answer.get("release") or {}
    status.release = release.get("current") or "-"
    status.model_version = (release.get("model_version") or "-")[:12]
    lock = release.get("lock")
    if lock is not None:
        since = lock.get("since_epoch")
        age = f", {int(((now or time.time()) - since) // 60)} min" if isinstance(since, (int, float)) else ""
        status.lock = f"{lock.get('by', 'unknown')} ({lock.get('release') or '?'}{age})"
    containers = answer.get("containers") or []
    expected = host.services
    for name, service in expected.items():
        mine = [c for c in containers if c["service"] == name]
        running = [c for c in mine if c["state"] == "running"]
        health = sorted({c["health"] or "no check" for c in running})
        restarts = sum(int(c.get("restarts") or 0) for c in mine)
        status.services.append((name, len(running), service.replicas, "/".join(health) or "-", restarts))
        if len(running) < service.replicas:
            states = ", ".join(f"{c['name']} {c['state']}" for c in mine if c["state"] != "running")
            status.problems.append(
                f"{name}: {len(running)} of {service.replicas} running" + (f" ({states})" if states else "")
            )
        unhealthy = [c["name"] for c in running if c["health"] == "unhealthy"]
        if unhealthy:
            status.problems.append(f"{name}: unhealthy {', '.join(unhealthy)}")
    strays = sorted({c["service"] for c in containers} - set(expected))
    if strays:
        status.problems.append(f"containers of services this host should not run: {', '.join(strays)}")
    if "proxy" in expected and "backend" in expected:
        slots = answer.get("proxy")
        wanted = expected["backend"].replicas
        if slots is None:
            status.backends = "?"
        else:
            up = backends_up(slots)
            status.backends = f"{up}/{wanted}"
            if up < wanted:
                status.problems.append(f"proxy: {up} of {wanted} backend replicas in rotation")
    minimum = int(host.variables.get("mnist_stack_min_free_disk_mb", 0)) * 2**20
    disks = answer.get("disk") or {}
    if disks:
        free = min(d["free"] for d in disks.values())
        status.disk = f"{free / 2**30:.1f} GiB"
        if free < minimum:
            status.problems.append(f"disk: {free // 2**20} MB free, below the {minimum // 2**20} MB a deploy needs")
    if host.inventory.get("ansible_connection") != "local" and status.release == "-":
        status.problems.append("no release deployed")
    return status


def status(fleet: Fleet) -> tuple[Table, list[str]]:
    """The environment's state as one table, and the problems that make it unhealthy (one line each)."""

    def ask(name: str, host: Host, context: invoke.Context) -> dict[str, Any]:
        project = str(host.variables["mnist_stack_project"])
        result = fleet.sudo(context, python_command(PROBE, fleet.home(host), project), timeout=90)
        return json.loads(result.stdout)

    table = Table(title=f"{fleet.env}: {len(fleet.hosts)} host(s)")
    for column in ("host", "what", "state"):
        table.add_column(column)
    problems = []
    for outcome in fleet.each(ask):
        if not outcome.ok:
            table.add_row(outcome.host, "ssh", f"[red]{outcome.error}[/]", end_section=True)
            problems.append(f"{outcome.host}: {outcome.error}")
            continue
        found = host_status(fleet.hosts[outcome.host], outcome.value)
        problems += [f"{found.host}: {problem}" for problem in found.problems]
        rows = [("release", f"{found.release} (model {found.model_version})")]
        for name, running, expected, health, restarts in found.services:
            good = running >= expected and health in ("healthy", "no check")
            state = f"[{'green' if good else 'red'}]{running}/{expected} {health}[/]"
            state += f", {restarts} restart(s)" if restarts else ""
            state += f", backends {found.backends} in rotation" if name == "proxy" and found.backends != "-" else ""
            rows.append((name, state))
        rows += [("disk", f"{found.disk} free"), ("lock", found.lock if found.lock != "-" else "free")]
        for index, (what, state) in enumerate(rows):
            table.add_row(found.host if index == 0 else "", what, state, end_section=index == len(rows) - 1)
    return table, problems


def _filters(host: Host, service: str) -> list[str]:
    project = str(host.variables["mnist_stack_project"])
    return [
        "--filter",
        f"label=com.docker.compose.project={project}",
        "--filter",
        f"label=com.docker.compose.service={service}",
    ]


def _check_service(fleet: Fleet, service: str) -> None:
    runs = {name for host in fleet.hosts.values() for name in host.services}
    if service not in runs:
        raise DeployError(f"{fleet.env} runs no service {service!r}; its services: {', '.join(sorted(runs))}")


class Prefixed:
    """A stream that writes each whole line to OUT as 'HOST | line', one writer at a time."""

    def __init__(self, host: str, width: int, out: TextIO, lock: threading.Lock) -> None:
        self.prefix, self.out, self.lock, self.partial = f"{host:<{width}} | ", out, lock, ""

    def write(self, text: str) -> int:
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        if lines:
            with self.lock:
                self.out.write("".join(f"{self.prefix}{line.rstrip(chr(13))}\n" for line in lines))  # a pty's \r\n
                self.out.flush()
        return len(text)

    def flush(self) -> None:
        """Nothing: Invoke flushes after every chunk it writes, and a chunk may end mid-line (`finish` ends it)."""

    def finish(self) -> None:
        """Write what is left of a last line that had no newline."""
        if self.partial:
            self.write("\n")


def log_command(host: Host, service: str, since: str, follow: bool, tail: int) -> str:
    """The shell command that prints SERVICE's containers' logs on a host, each line after its container's name and
    a timestamp (`docker logs` of each container at once, as Compose does without a compose file)."""
    options = (
        ["--timestamps", "--tail", str(tail)] + (["--since", since] if since else []) + (["--follow"] if follow else [])
    )
    script = (
        'for c in $(docker ps --all --format "{{.Names}}" "$@"); do '
        f'docker logs {shlex.join(options)} "$c" 2>&1 | sed "s/^/$c /" & done; wait'
    )
    return shlex.join(["sh", "-c", script, "sh", *_filters(host, service)])


def merged(lines_by_host: dict[str, list[str]]) -> list[tuple[str, str, str, str]]:
    """Every host's 'CONTAINER TIMESTAMP message' lines as (timestamp, host, container, message), by time."""
    rows = []
    for host, lines in lines_by_host.items():
        for line in lines:
            container, _, rest = line.partition(" ")
            stamp, _, message = rest.partition(" ")
            rows.append((stamp, host, container, message))
    return sorted(rows)


def logs(
    fleet: Fleet, service: str, since: str = "", follow: bool = False, tail: int = 200, out: TextIO = sys.stdout
) -> list[str]:
    """SERVICE's logs from every host, each line after its host: merged by time, or as they come with FOLLOW.
    Return the hosts that could not be read, each with why."""
    _check_service(fleet, service)
    width = max(len(name) for name in fleet.hosts)
    lock = threading.Lock()

    def read(name: str, host: Host, context: invoke.Context) -> list[str]:
        command = log_command(host, service, since, follow, tail)
        if follow:
            stream = Prefixed(name, width, out, lock)
            fleet.sudo(context, command, hide=False, out_stream=stream, err_stream=stream, pty=True)
            stream.finish()
            return []
        return fleet.sudo(context, command).stdout.splitlines()

    outcomes = fleet.each(read, until_interrupted=follow)
    if not follow:
        for stamp, host, container, message in merged({o.host: o.value for o in outcomes if o.ok}):
            out.write(f"{host:<{width}} | {container} {stamp} {message}\n")
    return [f"{o.host}: {o.error}" for o in outcomes if not o.ok]


NO_CONTAINER = 3  # in_container's exit code when no container of the service runs


def in_container(host: Host, service: str, command: list[str], stdin: bool = False) -> str:
    """A shell command that runs COMMAND in a running container of SERVICE on HOST (the first by name), with this
    side's stdin when STDIN."""
    script = (
        'c=$(docker ps --format "{{.Names}}" --filter status=running "$@" | sort | head -n 1); '
        f'[ -n "$c" ] || {{ echo "no running {service} container" >&2; exit {NO_CONTAINER}; }}; '
        f'exec docker exec {"-i " if stdin else ""}"$c" {shlex.join(command)}'
    )
    return shlex.join(["sh", "-c", script, "sh", *_filters(host, service)])


FEEDBACK = ["python3", "-m", "app.backend.feedback"]


def backup_feedback(fleet: Fleet) -> tuple[Corrections, list[str]]:
    """Every host's corrections (each host keeps its own database, unless they share one by URL), merged: each
    prediction once. With the hosts that could not answer, each with why: a backup with a host missing is not one."""

    def read(name: str, host: Host, context: invoke.Context) -> tuple[int, str, str]:
        result = fleet.sudo(context, in_container(host, "backend", [*FEEDBACK, "backup"]), warn=True, in_stream=False)
        return int(result.exited), result.stdout, result.stderr

    merged, problems = Corrections(), []
    for outcome in fleet.each(read):
        if not outcome.ok:
            problems.append(f"{outcome.host}: {outcome.error}")
            continue
        exited, stdout, stderr = outcome.value
        if exited:
            problems.append(f"{outcome.host}: backup exited {exited}: {stderr.strip()[-300:]}")
            continue
        try:
            merged = merged.merged(loads(stdout))
        except CorrectionsError as exc:
            problems.append(f"{outcome.host}: {exc}")
    return merged, problems


def restore_feedback(fleet: Fleet, document: str) -> tuple[dict[str, str], list[str]]:
    """Add a backup's corrections to every host's database (those a host has are kept as they are: restoring twice
    changes nothing). The document is checked here first: one that is not a backup reaches no host."""
    loads(document)

    def write(name: str, host: Host, context: invoke.Context) -> tuple[int, str]:
        shell = in_container(host, "backend", [*FEEDBACK, "restore"], stdin=True)
        result = fleet.sudo(context, shell, warn=True, in_stream=io.StringIO(document), echo_stdin=False)
        return int(result.exited), result.stderr.strip()

    done, problems = {}, []
    for outcome in fleet.each(write):
        if not outcome.ok:
            problems.append(f"{outcome.host}: {outcome.error}")
        elif outcome.value[0]:
            problems.append(f"{outcome.host}: restore exited {outcome.value[0]}: {outcome.value[1][-300:]}")
        else:
            done[outcome.host] = outcome.value[1]
    return done, problems


def exec_in(fleet: Fleet, service: str, command: list[str], out: TextIO = sys.stdout) -> list[str]:
    """Run COMMAND in a running container of SERVICE on each host (no TTY); each output line after its host.
    Return the hosts where it failed, each with why."""
    _check_service(fleet, service)
    if not command:
        raise DeployError("nothing to run: put the command after `--`, e.g. `invoke exec --service backend -- ls /`")
    width = max(len(name) for name in fleet.hosts)
    lock = threading.Lock()

    def run(name: str, host: Host, context: invoke.Context) -> int:
        stream = Prefixed(name, width, out, lock)
        shell = in_container(host, service, command)
        result = fleet.sudo(context, shell, hide=False, out_stream=stream, err_stream=stream, warn=True)
        stream.finish()
        return int(result.exited)

    failed = []
    for outcome in fleet.each(run):
        if not outcome.ok:
            failed.append(f"{outcome.host}: {outcome.error}")
        elif outcome.value:
            failed.append(f"{outcome.host}: exited {outcome.value}")
    return failed


def audit_entries(lines_by_host: dict[str, list[str]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every host's audit log lines (JSON each) merged by time; and the lines that are not an audit entry."""
    entries, unreadable = [], []
    for host, lines in lines_by_host.items():
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict) or "time" not in entry:
                    raise ValueError
            except ValueError:
                unreadable.append(f"{host}: audit.log line {number} is not an audit entry")
                continue
            entries.append({"host": host, **entry})
    return sorted(entries, key=lambda e: (str(e["time"]), e["host"])), unreadable


def audit(fleet: Fleet, last: int = 20) -> tuple[Table, list[str]]:
    """The hosts' audit logs merged by time (the LAST entries), and what could not be read."""

    def read(name: str, host: Host, context: invoke.Context) -> list[str]:
        path = f"{fleet.home(host)}/audit.log"
        return fleet.sudo(context, f"sh -c {shlex.quote(f'[ ! -e {path} ] || cat {path}')}").stdout.splitlines()

    outcomes = fleet.each(read)
    entries, problems = audit_entries({o.host: o.value for o in outcomes if o.ok})
    problems = [f"{o.host}: {o.error}" for o in outcomes if not o.ok] + problems
    table = Table(title=f"{fleet.env}: audit, last {min(last, len(entries))} of {len(entries)}")
    for column in ("time", "host", "event", "release", "by", "note"):
        table.add_column(column)
    for entry in entries[-last:] if last > 0 else entries:
        colour = "red" if entry.get("event") == "failed" else "white"
        table.add_row(
            str(entry["time"]),
            entry["host"],
            f"[{colour}]{entry.get('event', '?')}[/]",
            str(entry.get("release", "")),
            str(entry.get("by", "")),
            str(entry.get("note", "")),
        )
    return table, problems


TUNNELLED = ("prometheus", "alertmanager", "grafana", "backend", "frontend")


@contextmanager
def tunnel(fleet: Fleet, service: str, local_port: int = 0) -> Iterator[str]:
    """A local port forwarded, through the bastion, to SERVICE on the (first) host: where the host publishes it
    (its loopback), else its running container's address on the stack's network. Yields the local URL."""
    if service not in TUNNELLED:
        raise DeployError(f"no tunnel to {service!r}: choose one of {', '.join(TUNNELLED)}")
    name, host = next(iter(fleet.hosts.items()))
    running = host.services.get(service)
    if running is None or running.port is None:
        raise DeployError(f"{fleet.env}/{name} does not run {service}")
    if fleet.local:
        if not running.published:
            raise DeployError(f"{fleet.env} does not publish {service} (mnist_stack_{service}_published)")
        address, port = running.published[0]
        yield f"http://{address}:{port}/"
        return
    if not local_port:
        with socket.socket() as free:  # a free port here: the operator's own services keep theirs
            free.bind(("127.0.0.1", 0))
            local_port = free.getsockname()[1]
    with fleet.connect(name) as connection:
        if running.published:
            address, port = running.published[0]
        else:
            script = (
                'c=$(docker ps --quiet --filter status=running "$@" | head -n 1); [ -n "$c" ] && '
                "docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' \"$c\""
            )
            found = fleet.sudo(connection, shlex.join(["sh", "-c", script, "sh", *_filters(host, service)]), warn=True)
            addresses = found.stdout.split()
            if not addresses:
                raise DeployError(f"{fleet.env}/{name}: no running {service} container to forward to")
            address, port = addresses[0], running.port
        with connection.forward_local(local_port, remote_port=port, remote_host=address, local_host="127.0.0.1"):
            yield f"http://127.0.0.1:{local_port}/"
