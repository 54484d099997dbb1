"""The deploy layer without hosts: ssh_config from inventories, release identity, the role's declared variables."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from invoke.config import Config
from invoke.context import MockContext
from invoke.exceptions import Exit

import tasks
from mnist_deploy import deploy, render, ssh
from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError
from tests.unit.test_render import TLS

HOSTVARS = {
    "web-1": {
        "ansible_host": "web-1.internal",
        "ansible_user": "deploy",
        "mnist_bastion_mode": "through",
        "mnist_bastion_host": "bastion.example.internal",
        "mnist_bastion_port": 2200,
        "mnist_bastion_user": "jump",
        "mnist_ssh_identity_file": "/keys/id",
        "mnist_ssh_strict_host_key_checking": "yes",
    }
}


def test_ssh_config_jumps_through_the_bastion(tmp_path):
    text = ssh.config_text("staging", HOSTVARS, tmp_path)
    assert "Host mnist-bastion-staging\n  HostName bastion.example.internal\n  Port 2200\n  User jump" in text
    assert "Host web-1 web-1.internal\n  HostName web-1.internal" in text
    assert "  ProxyJump mnist-bastion-staging" in text
    assert "StrictHostKeyChecking yes" in text and f"UserKnownHostsFile {tmp_path}/ssh/staging/known_hosts" in text


def test_ssh_config_on_the_bastion_reaches_hosts_directly(tmp_path):
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["web-1"]["mnist_bastion_mode"] = "on"
    text = ssh.config_text("staging", hostvars, tmp_path)
    assert "ProxyJump" not in text and "mnist-bastion" not in text
    assert "Host web-1 web-1.internal" in text


def test_ssh_config_refuses_an_unknown_bastion_mode(tmp_path):
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["web-1"]["mnist_bastion_mode"] = "via"
    with pytest.raises(DeployError, match="the bastion mode is 'via'"):
        ssh.config_text("staging", hostvars, tmp_path)


def test_the_bastion_mode_is_chosen_where_the_toolkit_runs(tmp_path, monkeypatch):
    """On the bastion (`invoke bastion.run` sets MNIST_BASTION_MODE=on) the hosts are reached directly, whatever
    the committed inventory says."""
    through = ssh.config_text("staging", HOSTVARS, tmp_path)
    assert "ProxyJump mnist-bastion-staging" in through
    monkeypatch.setenv(ssh.MODE_ENV, "on")
    on = ssh.config_text("staging", HOSTVARS, tmp_path)
    assert "ProxyJump" not in on and "Host mnist-bastion-staging" not in on
    assert ssh.bastion_endpoint("staging", HOSTVARS) is None


def test_every_remote_inventory_writes_an_ssh_config(tmp_path):
    for env in ("sandbox", "staging", "production"):
        hostvars = Environment.read(env).hostvars
        text = ssh.config_text(env, hostvars, tmp_path)
        assert text.count("ProxyJump") == len(hostvars)


RELEASE = {
    "env": "sandbox",
    "images": [{"service": "backend", "ref": "mnist-backend:abc", "id": "sha256:" + "1" * 64}],
    "model_version": "a" * 64,
    "files": {"target-1": {"compose.yaml": "f" * 64}},
}


def test_release_id_depends_on_content_only():
    same = dict(RELEASE, assembled="2026-01-01T00:00:00+00:00", by="someone@somewhere")
    assert deploy.release_id(RELEASE) == deploy.release_id(same)
    other = copy.deepcopy(RELEASE)
    other["images"][0]["id"] = "sha256:" + "2" * 64
    assert deploy.release_id(other) != deploy.release_id(RELEASE)
    other = copy.deepcopy(RELEASE)
    other["files"]["target-1"]["compose.yaml"] = "e" * 64
    assert deploy.release_id(other) != deploy.release_id(RELEASE)


def test_deploying_dev_is_refused_with_the_local_command():
    with pytest.raises(Exit) as exc:
        tasks.deploy(MockContext(Config(overrides={"mnist": {"model_dir": "models"}})), env="dev")
    assert exc.value.code == 2 and "invoke up --env=dev" in str(exc.value.message)


def test_rollback_to_something_that_is_not_a_release_id_exits_2():
    with pytest.raises(Exit) as exc:
        tasks.rollback(MockContext(), env="sandbox", to="../../etc")
    assert exc.value.code == 2 and "is not a release id" in str(exc.value.message)


def test_the_role_declares_every_default_in_its_argument_specs():
    role = render.ROOT / "roles" / "mnist_stack"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    for entry_point in ("main", "rollback", "releases"):
        options = specs[entry_point]["options"]
        assert set(options) == set(defaults), entry_point
        for name, value in defaults.items():
            if value is not None and "default" in options[name]:
                assert options[name]["default"] == value, name


def test_the_sandbox_renders_two_hosts_with_replicas_behind_no_published_backend(tmp_path):
    # TLS stands in for what `invoke sandbox.up` writes to the git-ignored tls.yml, which a fresh clone lacks.
    out = render.render("sandbox", {"mnist_stack_image_tag": "test", **TLS}, tmp_path, validate=False)
    compose = yaml.safe_load((out / "target-1" / "compose.yaml").read_text())
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["target-1", "target-2"]
    assert compose["services"]["backend"]["deploy"]["replicas"] == 2
    assert "ports" not in compose["services"]["backend"]


def listening_server(greeting: bytes | None):
    """A TCP server on 127.0.0.1 that sends GREETING to each client (None: closes at once); yields its port."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            with client:
                if greeting:
                    client.sendall(greeting)

    threading.Thread(target=serve, daemon=True).start()
    return server


def bastion_vars(port: int) -> dict:
    return {"web-1": {**HOSTVARS["web-1"], "mnist_bastion_host": "127.0.0.1", "mnist_bastion_port": port}}


def test_a_bastion_that_answers_ssh_passes():
    with listening_server(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n") as server:
        ssh.check_bastion("staging", bastion_vars(server.getsockname()[1]))


def test_a_bastion_that_refuses_is_named_with_its_address():
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = unused.getsockname()[1]
        with pytest.raises(DeployError) as refused:
            ssh.check_bastion("staging", bastion_vars(port))
    message = str(refused.value)
    assert f"the bastion mnist-bastion-staging (127.0.0.1:{port}) cannot be reached: Connection refused" in message
    assert "Nothing was changed on any host" in message


def test_a_bastion_that_closes_the_connection_is_named():
    with listening_server(None) as server:
        with pytest.raises(DeployError, match=r"mnist-bastion-staging \(127.0.0.1:\d+\) cannot be reached: it closed"):
            ssh.check_bastion("staging", bastion_vars(server.getsockname()[1]))


def test_hosts_reached_from_the_bastion_itself_need_no_bastion_check():
    hostvars = {"web-1": {**HOSTVARS["web-1"], "mnist_bastion_mode": "on", "mnist_bastion_port": 1}}
    ssh.check_bastion("staging", hostvars)  # would be refused on port 1 if it tried


def runner_event(kind: str, host: str, task: str, **result) -> dict:
    """An event as ansible-runner hands it to the event handler (the fields playbook() reads)."""
    return {"event": kind, "stdout": "", "event_data": {"host": host, "task": task, "res": result}}


def test_a_failed_task_is_named_with_its_host_and_reason():
    event = runner_event("runner_on_failed", "target-2", "Check the gate", msg="1 of 2 replicas below 90 %")
    assert deploy.failure_of(event) == ("target-2", "Check the gate: 1 of 2 replicas below 90 %")
    unreachable = runner_event("runner_on_unreachable", "target-1", "Gathering Facts", msg="ssh: connect timed out")
    assert deploy.failure_of(unreachable) == ("target-1", "Gathering Facts: ssh: connect timed out")
    ignored = runner_event("runner_on_failed", "target-1", "Probe", msg="x")
    ignored["event_data"]["ignore_errors"] = True
    assert deploy.failure_of(ignored) is None
    assert deploy.failure_of(runner_event("runner_on_ok", "target-1", "Probe")) is None


def test_changed_counts_come_from_the_runs_stats_for_every_processed_host():
    stats = {"processed": {"target-1": 1, "target-2": 1}, "changed": {"target-1": 3}, "failures": {}, "dark": {}}
    assert deploy.outcome("sandbox", "deploy", 0, stats, {}) == {"target-1": 3, "target-2": 0}


def test_a_failed_run_names_each_failed_host_and_its_last_failure():
    stats = {"processed": {"target-1": 1, "target-2": 1}, "failures": {"target-2": 1}, "dark": {"target-1": 1}}
    last = {"target-2": "Fail with what serves now: the gate refused release abc", "target-1": "Gathering Facts: x"}
    with pytest.raises(DeployError) as failed:
        deploy.outcome("sandbox", "deploy", 2, stats, last)
    assert str(failed.value) == (
        "deploy on sandbox failed: target-1: Gathering Facts: x; "
        "target-2: Fail with what serves now: the gate refused release abc"
    )


def test_a_failure_a_block_rescued_does_not_fail_the_run():
    """The rescue handled it: the final stats list no failure, so the run succeeded whatever events came before."""
    stats = {"processed": {"target-1": 1}, "changed": {"target-1": 2}, "failures": {}, "dark": {}}
    assert deploy.outcome("sandbox", "deploy", 0, stats, {"target-1": "Gate: refused"}) == {"target-1": 2}


def test_ansible_runner_keeps_host_key_checking_and_uses_the_project_config(tmp_path):
    options = deploy.runner_options("production", "deploy", tmp_path / "vars.json", check=True)
    assert options["envvars"]["ANSIBLE_HOST_KEY_CHECKING"] == "True"  # runner's own default would be False
    assert options["envvars"]["ANSIBLE_CONFIG"] == str(render.ROOT / "ansible.cfg")
    assert options["envvars"]["PATH"].startswith(str(Path(sys.executable).parent))  # this venv's ansible-playbook
    assert options["project_dir"] == str(render.ROOT)
    assert options["cmdline"] == f"-e @{tmp_path / 'vars.json'} --check --diff"
    assert "passwords" not in options


def test_a_typed_sudo_password_answers_ansibles_become_prompt_only(tmp_path, monkeypatch):
    monkeypatch.setattr(deploy, "_BECOME", {})
    monkeypatch.setattr(deploy.getpass, "getpass", lambda prompt: "typed-by-the-operator")
    deploy.ask_become_pass()
    options = deploy.runner_options("staging", "deploy", tmp_path / "vars.json", check=False)
    assert options["cmdline"].endswith(" --ask-become-pass")
    [(prompt, answer)] = options["passwords"].items()
    assert answer == "typed-by-the-operator" and re.match(prompt, "BECOME password: ")
    assert "typed-by-the-operator" not in json.dumps({k: v for k, v in options.items() if k != "passwords"})


A, B, C = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"


@pytest.fixture
def recorded_runs(tmp_path, monkeypatch):
    """playbook() replaced: each run is recorded; the deploy writes what each host reported and then fails."""
    monkeypatch.setattr(render, "BUILD", tmp_path)
    results = tmp_path / "sandbox" / "results"
    results.mkdir(parents=True)
    runs: list[tuple[str, dict]] = []

    def playbook(env, name, extra, check=False, keep_results=False):
        runs.append((name, extra))
        if name == "deploy":
            # target-1 switched from A to C, target-2 failed its gate (its rescue put B back: no result), target-3
            # already served C (a redeploy there), target-4 had no release before.
            for host, before in (("target-1", A), ("target-3", C), ("target-4", "")):
                row = {"host": host, "event": "deploy", "release": C, "before": before}
                (results / f"{host}.json").write_text(json.dumps(row))
            raise DeployError("deploy on sandbox failed: target-2: gate failed")
        return {}

    monkeypatch.setattr(deploy, "playbook", playbook)
    return runs


def test_a_failed_deploy_returns_the_hosts_it_switched_then_gives_the_lock_back(recorded_runs, capsys):
    with pytest.raises(DeployError, match="target-2: gate failed"):
        deploy.locked_run("sandbox", "deploy", {"mnist_stack_release": {"id": C}}, check=False)
    assert [name for name, _ in recorded_runs] == ["deploy", "rollback", "unlock"]
    run_id = recorded_runs[0][1]["mnist_stack_run_id"]
    assert recorded_runs[1][1] == {"mnist_stack_revert": {"target-1": A}, "mnist_stack_run_id": run_id}
    assert recorded_runs[2][1] == {"mnist_stack_run_id": run_id}  # the same run's lock, nobody else's
    assert f"target-4 ran no release before {C}: it keeps serving it" in capsys.readouterr().out


def test_a_check_run_that_fails_reverts_nothing(recorded_runs):
    with pytest.raises(DeployError):
        deploy.locked_run("sandbox", "deploy", {"mnist_stack_release": {"id": C}}, check=True)
    assert [name for name, _ in recorded_runs] == ["deploy"]


def test_the_plan_shows_how_many_layers_of_an_image_travel_and_bounds_their_size():
    backend = {"service": "backend", "layers": ["a", "b", "c"], "skip": ["a", "b"]}
    assert deploy.shipped_image(backend, 273_000_000) == "backend (1 of 3 layers, ≤ 273 MB)"
    assert deploy.shipped_image({**backend, "skip": []}, 273_000_000) == "backend (273 MB)"


def test_the_summary_gives_each_hosts_gate_on_raw_and_drawn_digits(monkeypatch):
    from rich.console import Console

    gate = [
        {"accuracy": 1.0, "drawn": 40, "drawn_accuracy": 0.95},
        {"accuracy": 0.99, "drawn": 40, "drawn_accuracy": 1.0},
    ]
    rows = [
        {"host": "web-1", "event": "deploy", "release": "r2", "before": "r1", "model_version": "m" * 64, "gate": gate},
        {"host": "web-2", "event": "deploy", "release": "r2", "before": "r2", "model_version": "m" * 64, "gate": []},
    ]
    rows = [{**row, "seconds": 12.0} for row in rows]
    monkeypatch.setattr(deploy, "host_results", lambda env: rows)
    console = Console(width=200, record=True)
    console.print(deploy.summary("sandbox", "Deploy", 30.0))
    shown = console.export_text()
    assert "2 ready, 99% raw, 95% drawn" in shown and "unchanged, healthy" in shown
