"""Operations' judgements from what hosts answer (mnist_deploy/operations.py), and the fleet's host-key pinning
(mnist_deploy/fleet.py), without hosts: the sandbox scenario runs them against real ones."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fabric
import paramiko
import pytest

from app.mnist import corrections as documents
from mnist_deploy import fleet, operations, probe
from mnist_deploy.environment import Environment, Host

TAG = "0123456789ab-0123456789ab"


@pytest.fixture(scope="module")
def host() -> Host:
    """A sandbox host: two backend replicas behind the proxy, Prometheus, the frontend."""
    return Environment.read("sandbox", {"mnist_stack_image_tag": TAG}).hosts["target-1"]


def container(service: str, number: int = 1, state: str = "running", health: str = "healthy", restarts: int = 0):
    name = f"mnist-sandbox-{service}-{number}"
    return {"name": name, "id": "c0ffee", "service": service, "state": state, "health": health, "restarts": restarts}


def healthy_answer(host: Host) -> dict:
    containers = [container(name, n + 1) for name, s in host.services.items() for n in range(s.replicas)]
    return {
        "errors": {},
        "release": {"current": "aaaaaaaaaaaa", "previous": "", "model_version": "f" * 64, "lock": None},
        "containers": containers,
        "proxy": [["172.18.0.5", 2, 0], ["172.18.0.6", 2, 0], ["-", 0, 0x20], ["-", 0, 0x20]],
        "disk": {"images": {"path": "/var/lib/docker", "free": 20 * 2**30, "total": 40 * 2**30}},
    }


def test_a_healthy_host_has_no_problem(host: Host) -> None:
    status = operations.host_status(host, healthy_answer(host))
    assert status.problems == []
    assert status.release == "aaaaaaaaaaaa" and status.model_version == "f" * 12
    assert status.backends == "2/2" and status.disk == "20.0 GiB" and status.lock == "-"
    assert ("backend", 2, 2, "healthy", 0) in status.services


def test_a_missing_replica_an_unhealthy_one_and_a_drained_slot_are_each_named(host: Host) -> None:
    answer = healthy_answer(host)
    answer["containers"] = [c for c in answer["containers"] if c["name"] != "mnist-sandbox-backend-2"]
    answer["containers"].append(container("backend", 2, state="exited", health="", restarts=3))
    answer["containers"] = [c for c in answer["containers"] if c["service"] != "frontend"]
    answer["containers"].append(container("frontend", health="unhealthy"))
    answer["proxy"][1] = ["172.18.0.6", 2, 0x01]  # a slot a dead rollout left in forced maintenance
    problems = operations.host_status(host, answer).problems
    assert "backend: 1 of 2 running (mnist-sandbox-backend-2 exited)" in problems
    assert any(p.startswith("frontend: unhealthy") for p in problems)
    assert "proxy: 1 of 2 backend replicas in rotation" in problems


def test_low_disk_a_held_lock_strays_and_probe_errors(host: Host) -> None:
    answer = healthy_answer(host)
    answer["disk"]["images"]["free"] = 100 * 2**20
    answer["release"]["lock"] = {"by": "alice@ci", "release": "bbbbbbbbbbbb", "since_epoch": 1000.0}
    answer["containers"].append(container("grafana"))
    answer["errors"]["proxy"] = "Error response from daemon: container is paused"
    status = operations.host_status(host, answer, now=1000.0 + 600)
    assert status.lock == "alice@ci (bbbbbbbbbbbb, 10 min)"
    assert "disk: 100 MB free, below the 2048 MB a deploy needs" in status.problems
    assert "containers of services this host should not run: grafana" in status.problems
    assert "proxy: Error response from daemon: container is paused" in status.problems


def test_a_host_without_a_release_is_a_problem(host: Host) -> None:
    answer = healthy_answer(host)
    answer["release"] = {"current": "", "previous": "", "model_version": "", "lock": None}
    assert "no release deployed" in operations.host_status(host, answer).problems


def test_backends_up_counts_running_slots_in_no_maintenance() -> None:
    assert operations.backends_up([["a", 2, 0], ["b", 2, 4], ["c", 1, 0], ["-", 0, 0x20], ["d", 2, 0x08]]) == 2


def test_logs_merge_by_time_across_hosts() -> None:
    rows = operations.merged(
        {
            "target-2": ["mnist-sandbox-backend-1 2026-12-03T10:00:02.000000000Z second"],
            "target-1": [
                "mnist-sandbox-backend-2 2026-12-03T10:00:03.000000000Z third line, with spaces",
                "mnist-sandbox-backend-1 2026-12-03T10:00:01.000000000Z first",
            ],
        }
    )
    assert [(host, message) for _, host, _, message in rows] == [
        ("target-1", "first"),
        ("target-2", "second"),
        ("target-1", "third line, with spaces"),
    ]


def test_log_command_reads_the_service_of_the_project(host: Host) -> None:
    command = operations.log_command(host, "backend", since="10m", follow=True, tail=50)
    assert "label=com.docker.compose.project=mnist-sandbox" in command
    assert "label=com.docker.compose.service=backend" in command
    assert "--since 10m --follow" in command and "--tail 50" in command


def test_prefixed_writes_whole_lines_after_the_host() -> None:
    """Invoke writes each chunk it reads and flushes: a chunk may end mid-line, and the line stays whole."""
    out = io.StringIO()
    stream = operations.Prefixed("target-1", 9, out, threading.Lock())
    stream.write("one\ntw")
    stream.flush()
    stream.write("o\n")
    stream.write("three")
    stream.flush()
    assert out.getvalue() == "target-1  | one\ntarget-1  | two\n"
    stream.finish()
    assert out.getvalue().endswith("target-1  | three\n")


def test_audit_logs_merge_by_time_and_name_what_is_not_an_entry() -> None:
    line = {"time": "2026-12-03T10:00:00Z", "event": "deploy", "release": "a", "by": "alice@ci", "host": "target-1"}
    later = {**line, "time": "2026-12-03T11:00:00Z", "event": "rollback"}
    entries, unreadable = operations.audit_entries(
        {"target-1": [json.dumps(later), "garbage"], "target-2": [json.dumps({**line, "host": "target-2"})]}
    )
    assert [(e["host"], e["event"]) for e in entries] == [("target-2", "deploy"), ("target-1", "rollback")]
    assert unreadable == ["target-1: audit.log line 2 is not an audit entry"]


def test_the_probe_reports_what_it_cannot_read_instead_of_failing(tmp_path: Path) -> None:
    """Run as the hosts run it (`python3 -c SOURCE HOME PROJECT`), with no engine on PATH and an empty home."""
    (tmp_path / "home" / "releases" / "r1").mkdir(parents=True)
    (tmp_path / "home" / "releases" / "r1" / "release.json").write_text(json.dumps({"model_version": "abc"}))
    (tmp_path / "home" / "current").symlink_to(tmp_path / "home" / "releases" / "r1")
    (tmp_path / "home" / "deploy.lock").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", Path(probe.__file__).read_text(), str(tmp_path / "home"), "mnist-x"],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path)},  # no docker here
        check=True,
    )
    answer = json.loads(done.stdout)
    assert answer["release"] == {"current": "r1", "previous": "", "model_version": "abc", "lock": {}}
    assert answer["containers"] is None and "containers" in answer["errors"]
    assert answer["disk"]["releases"]["free"] > 0


def test_pinned_keys_are_handed_to_paramiko_under_the_address_it_connects_to(tmp_path: Path) -> None:
    """paramiko looks keys up by the address (and port) it connects to, not by HostKeyAlias: pin() files the
    alias's keys there, for the host and its ProxyJump bastion, and refuses any other key."""
    (tmp_path / "config").write_text(
        "Host mnist-bastion-x\n  HostName 127.0.0.1\n  Port 2222\n  HostKeyAlias mnist-bastion-x\n\n"
        "Host web-1\n  HostName 10.0.0.5\n  HostKeyAlias web-1\n  ProxyJump mnist-bastion-x\n"
    )
    bastion_key, host_key = paramiko.RSAKey.generate(1024), paramiko.RSAKey.generate(1024)
    known = paramiko.HostKeys()
    known.add("mnist-bastion-x", bastion_key.get_name(), bastion_key)
    known.add("web-1", host_key.get_name(), host_key)
    connection = fleet.pin(
        fabric.Connection("web-1", config=fabric.Config(runtime_ssh_path=str(tmp_path / "config"))), known
    )
    assert connection.client.get_host_keys().lookup("10.0.0.5")[host_key.get_name()] == host_key
    gateway = connection.gateway
    assert gateway.client.get_host_keys().lookup("[127.0.0.1]:2222")[bastion_key.get_name()] == bastion_key
    with pytest.raises(fleet.UnknownHostKey, match="web-1's host key"):
        connection.client._policy.missing_host_key(connection.client, "10.0.0.5", paramiko.RSAKey.generate(1024))


def test_why_says_what_to_do() -> None:
    key, other = paramiko.RSAKey.generate(1024), paramiko.RSAKey.generate(1024)
    assert "invoke known-hosts --env=staging" in fleet.why(fleet.UnknownHostKey("web-1", key), "staging")
    changed = fleet.why(paramiko.BadHostKeyException("web-1", key, other), "staging")
    assert "CHANGED" in changed and key.fingerprint in changed
    assert fleet.why(ConnectionRefusedError(111, "Connection refused"), "x") == "unreachable: Connection refused"


def test_each_host_answers_or_says_why_in_the_hosts_order() -> None:
    """The dev environment runs on this machine through the same layer: a command's output, or its failure as one
    line naming it. (No stdin here: pytest holds it.)"""
    dev = fleet.Fleet("dev")
    [answer] = dev.each(lambda name, host, context: context.run("echo hi", hide=True, in_stream=False).stdout.strip())
    assert (answer.host, answer.value, answer.ok) == ("localhost", "hi", True)
    [failed] = dev.each(lambda name, host, context: context.run("echo no >&2; exit 3", hide=True, in_stream=False))
    assert not failed.ok and failed.error == "`echo no >&2; exit 3` exited 3: no"


class AnsweringFleet:
    """Stands in a Fleet: each host's answer to `each` is given (a value, or an error line)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers, self.asked = answers, 0

    def each(self, work: Any) -> list[fleet.Outcome]:
        self.asked += 1
        return [
            fleet.Outcome(host, error=answer) if isinstance(answer, str) else fleet.Outcome(host, answer)
            for host, answer in self.answers.items()
        ]


def _corrections(*ids: str) -> documents.Corrections:
    when = datetime(2026, 12, 6, tzinfo=UTC)
    return documents.Corrections([documents.Correction(i, when, 1, 7, "v1", bytes(784)) for i in ids])


def test_a_backup_merges_the_hosts_corrections_each_prediction_once() -> None:
    hosts = AnsweringFleet(
        {"web-1": (0, _corrections("a", "b").dumps(), ""), "web-2": (0, _corrections("b", "c").dumps(), "")}
    )
    merged, problems = operations.backup_feedback(hosts)  # type: ignore[arg-type]
    assert problems == [] and [c.prediction_id for c in merged.items] == ["a", "b", "c"]


def test_a_backup_with_a_host_missing_names_it() -> None:
    hosts = AnsweringFleet(
        {
            "web-1": (0, _corrections("a").dumps(), ""),
            "web-2": "unreachable: Connection refused",
            "web-3": (3, "", "no running backend container\n"),
            "web-4": (0, "not json", ""),
        }
    )
    _, problems = operations.backup_feedback(hosts)  # type: ignore[arg-type]
    assert problems[0] == "web-2: unreachable: Connection refused"
    assert problems[1] == "web-3: backup exited 3: no running backend container"
    assert problems[2].startswith("web-4: not a corrections document")


def test_a_restore_of_what_is_not_a_backup_reaches_no_host() -> None:
    hosts = AnsweringFleet({"web-1": (0, "")})
    for bad in ("", '{"format": "other"}', _corrections("a").dumps().replace('"right_digit": 7', '"right_digit": 12')):
        with pytest.raises(documents.CorrectionsError):
            operations.restore_feedback(hosts, bad)  # type: ignore[arg-type]
    assert hosts.asked == 0
    done, problems = operations.restore_feedback(
        AnsweringFleet({"web-1": (0, "restored: 1 corrections added"), "web-2": (2, "restore refused: x")}),  # type: ignore[arg-type]
        _corrections("a").dumps(),
    )
    assert done == {"web-1": "restored: 1 corrections added"} and problems == [
        "web-2: restore exited 2: restore refused: x"
    ]


def test_commands_run_in_a_container_of_the_service_with_stdin_only_when_asked() -> None:
    host = fleet.Fleet("dev").hosts["localhost"]
    command = operations.in_container(host, "backend", ["python3", "-m", "app.backend.feedback", "restore"], stdin=True)
    assert "docker exec -i " in command and "python3 -m app.backend.feedback restore" in command
    assert "label=com.docker.compose.service=backend" in command
    assert " -i " not in operations.in_container(host, "backend", ["true"])
