"""The Invoke layer: thin, and every user mistake is a clear exit code 2, never a traceback."""

import re
import shutil

import pytest
from invoke.config import Config
from invoke.context import MockContext, Result
from invoke.exceptions import Exit

import tasks
from app.mnist.store import ModelStoreError
from mnist_deploy.errors import DeployError
from mnist_deploy.provision import ProvisionError


def test_unknown_test_tier_exits_2_naming_the_choices():
    with pytest.raises(Exit) as exc:
        tasks.test(MockContext(), tier="smoke")
    assert exc.value.code == 2
    assert "unknown tier 'smoke'" in str(exc.value.message) and "integration" in str(exc.value.message)


def test_test_task_runs_pytest_with_the_tier_marker(monkeypatch):
    monkeypatch.setattr("mnist_deploy.provision.ensure", lambda purpose: [])
    # MockContext refuses any command that matches no key, so this fails unless the marker is passed.
    context = MockContext(run={re.compile(r'.* -m pytest -m "not slow and not integration and not infra'): Result()})
    tasks.test(context, tier="unit")


def test_render_with_an_unknown_env_exits_2_with_the_known_ones():
    with pytest.raises(Exit) as exc:
        tasks.render(MockContext(), env="prod", tag="abc")
    assert exc.value.code == 2
    assert "unknown environment 'prod'" in str(exc.value.message)


def test_every_task_has_a_docstring_and_help_for_each_flag():
    names = list(tasks.ns.task_names)
    assert {"train", "render", "build", "up", "down", "status", "logs", "clean", "test", "images.base"} <= set(names)
    for name in names:
        task = tasks.ns[name]
        assert task.__doc__ and task.__doc__.strip(), name
        for argument in task.get_arguments():
            assert argument.help, f"{name}: --{argument.name} has no help"


def test_every_task_turns_expected_failures_into_exit_2():
    for name in tasks.ns.task_names:
        assert getattr(tasks.ns[name].body, "__wrapped__", None), f"{name} is not wrapped by reports_errors"


@pytest.mark.parametrize(
    "error",
    [
        DeployError("the bastion mnist-bastion-staging (10.0.0.1:22) cannot be reached: Connection refused"),
        ProvisionError("missing for `up`: debootstrap. Run as root: apt-get update && apt-get install -y debootstrap"),
        ModelStoreError("metadata version 'abc' is not the ONNX sha256 def"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_each_expected_error_class_is_one_error_line_and_exit_2(monkeypatch, error):
    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr("mnist_deploy.render.render", fails)
    with pytest.raises(Exit) as exc:
        tasks.render(MockContext(), env="dev", tag="abc")
    assert exc.value.code == 2
    assert str(exc.value.message) == f"error: {error}"


def test_a_corrupt_model_in_the_store_stops_build_with_an_error_line(monkeypatch):
    """The bytes of a stored model no longer match its version: exit 2 naming it, never a traceback."""
    from mnist_deploy import engine, images

    store = images.ROOT / "build" / "test-corrupt-store"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(images.ROOT / "models", store)
    try:
        version = (store / "current").read_text().strip()
        onnx = store / version / "model.onnx"
        onnx.write_bytes(onnx.read_bytes()[:-16] + b"\0" * 16)
        monkeypatch.setattr(engine, "ensure_engine", lambda: None)
        monkeypatch.setattr(images, "build_base", lambda force=False: images.BASE_IMAGE)
        context = MockContext(Config(overrides={"mnist": {"model_dir": str(store)}}))
        with pytest.raises(Exit) as exc:
            tasks.build(context)
        assert exc.value.code == 2
        assert str(exc.value.message).startswith("error: ") and version[:12] in str(exc.value.message)
    finally:
        shutil.rmtree(store, ignore_errors=True)


def test_releasing_the_lock_without_a_terminal_needs_yes(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    monkeypatch.setattr("mnist_deploy.deploy.lock", lambda env, release=False: pytest.fail("must not touch hosts"))
    with pytest.raises(Exit) as exc:
        tasks.lock(MockContext(), env="staging", release=True)
    assert exc.value.code == 2 and "add --yes" in str(exc.value.message)


def test_releasing_the_lock_asks_for_the_environments_name(monkeypatch):
    calls = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "production")
    monkeypatch.setattr("mnist_deploy.deploy.lock", lambda env, release=False: calls.append(release) or "table")
    with pytest.raises(Exit) as exc:
        tasks.lock(MockContext(), env="staging", release=True)
    assert exc.value.code == 2 and "not released" in str(exc.value.message)
    assert calls == [False]  # shown, not released


@pytest.mark.parametrize(("anything", "code"), [(False, None), (True, 2)])
def test_plan_exits_2_only_when_a_deploy_would_change_something(monkeypatch, anything, code):
    monkeypatch.setattr("mnist_deploy.deploy.plan", lambda env, model_dir: ("table", anything))
    monkeypatch.setattr("mnist_deploy.deploy.console.print", lambda *args: None)
    if code is None:
        tasks.plan(MockContext(Config(overrides={"mnist": {"model_dir": "models"}})), env="staging")
        return
    with pytest.raises(Exit) as exc:
        tasks.plan(MockContext(Config(overrides={"mnist": {"model_dir": "models"}})), env="staging")
    assert exc.value.code == code


def test_plan_exits_1_on_an_error_so_that_2_keeps_meaning_changes(monkeypatch):
    def fails(env, model_dir):
        raise DeployError("the bastion cannot be reached")

    monkeypatch.setattr("mnist_deploy.deploy.plan", fails)
    with pytest.raises(Exit) as exc:
        tasks.plan(MockContext(Config(overrides={"mnist": {"model_dir": "models"}})), env="staging")
    assert exc.value.code == 1 and str(exc.value.message) == "error: the bastion cannot be reached"


def test_host_keys_are_keyed_by_the_ssh_configs_names_and_replace_only_theirs(tmp_path):
    from mnist_deploy import ssh

    scan = (
        "# target-1:22 SSH-2.0-OpenSSH_9.2\n[10.0.0.5]:2222 ssh-ed25519 AAAAC3Nza key1\n10.0.0.5 ssh-rsa AAAAB3 key2\n"
    )
    assert ssh.keyed(scan, "target-1") == ["target-1 ssh-ed25519 AAAAC3Nza", "target-1 ssh-rsa AAAAB3"]
    path = ssh.known_hosts_path("sandbox", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("target-1 ssh-ed25519 OLD\nother ssh-ed25519 KEPT\n")
    ssh.store_known_hosts("sandbox", {"target-1": ["target-1 ssh-ed25519 NEW"]}, tmp_path)
    assert path.read_text() == "other ssh-ed25519 KEPT\ntarget-1 ssh-ed25519 NEW\n"


def test_the_audit_log_names_the_operator_given_with_as(monkeypatch):
    from mnist_deploy import deploy

    monkeypatch.delenv(deploy.OPERATOR_ENV, raising=False)
    monkeypatch.setenv("SUDO_USER", "alice")
    assert deploy.deployer().startswith("alice@")
    monkeypatch.setattr(deploy, "deploy", lambda *args, **kwargs: None)
    tasks.deploy(MockContext(Config(overrides={"mnist": {"model_dir": "models"}})), env="sandbox", as_="ci-bob")
    assert deploy.deployer().startswith("ci-bob@")
