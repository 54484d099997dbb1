"""The machine packages, declared once (mnist_deploy/provision.py): what each command needs and how it is said."""

import subprocess
import sys

import pytest

from mnist_deploy import provision
from mnist_deploy.provision import Group, ProvisionError

INSTALLED: list[str] = []  # what the fake apt below "installed"; a group is present once its package is


def group(name, present, needed_for=("up", "test")):
    package = f"pkg-{name}"
    return Group(name, (package,), f"why {name}", frozenset(needed_for), lambda: present or package in INSTALLED)


@pytest.fixture
def groups(monkeypatch):
    """Three groups: one present, two missing (one only for tests)."""
    INSTALLED.clear()
    chosen = (group("have", True), group("engine", False), group("browser", False, needed_for=("test",)))
    monkeypatch.setattr(provision, "GROUPS", chosen)
    return chosen


def test_each_purpose_lacks_only_its_own_missing_groups(groups):
    assert [g.name for g in provision.missing("up", groups)] == ["engine"]
    assert [g.name for g in provision.missing("test", groups)] == ["engine", "browser"]


def test_an_unknown_purpose_is_refused_with_the_choices():
    with pytest.raises(ProvisionError, match="choose one of: venv, up, unit, test"):
        provision.missing("deploy")


def test_without_root_it_stops_with_the_exact_apt_get_line(groups, monkeypatch):
    monkeypatch.setattr(provision, "may_install", lambda: False)
    with pytest.raises(ProvisionError) as refused:
        provision.ensure("test")
    message = str(refused.value)
    assert "missing for `test`: engine, browser" in message
    assert "apt-get install -y -q --no-install-recommends --no-remove pkg-engine pkg-browser" in message
    assert "\n" not in message  # one line


def test_as_root_each_group_is_installed_with_one_line_saying_why(groups, monkeypatch, tmp_path):
    monkeypatch.setattr(provision, "may_install", lambda: True)
    monkeypatch.setattr(provision, "_apt", lambda args, log: INSTALLED.append(args[-1]))
    lines = []
    provision.ensure("test", out=lines.append, log=tmp_path / "apt.log")
    assert INSTALLED == ["-q", "pkg-engine", "pkg-browser"]  # apt-get update -q, then one install per group
    assert any(line.strip().startswith("[1/2] engine (pkg-engine): why engine") for line in lines)
    assert any(line.strip().startswith("[2/2] browser (pkg-browser): why browser") for line in lines)


def test_a_group_still_missing_after_its_install_is_an_error(groups, monkeypatch, tmp_path):
    monkeypatch.setattr(provision, "may_install", lambda: True)
    monkeypatch.setattr(provision, "_apt", lambda args, log: None)  # apt "succeeds" but installs nothing
    with pytest.raises(ProvisionError, match="engine: installed pkg-engine, but it is still not usable"):
        provision.ensure("up", out=lambda _: None, log=tmp_path / "apt.log")


def test_apt_never_removes_a_package_to_install_ours():
    assert "--no-remove" in provision.install_command(provision.GROUPS)


def test_the_engine_group_keeps_any_engine_already_installed(monkeypatch):
    engine = provision.group("Docker engine")
    monkeypatch.setattr(provision.shutil, "which", lambda name: None)
    monkeypatch.setattr(provision, "installed_packages", lambda names: ["docker-ce"])
    assert engine.present()  # docker-ce from Docker's repository: docker.io is not installed beside it


def test_it_runs_with_the_system_python_before_any_virtualenv():
    """Standard library only: `python3 -m mnist_deploy.provision` runs before .venv exists."""
    code = (
        "import sys, mnist_deploy.provision; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'rich', 'yaml', 'jinja2', 'invoke', 'pydantic'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_check_mode_lists_what_is_missing_and_exits_1(groups, capsys):
    assert provision.main(["up", "--check"]) == 1
    assert "missing: engine (pkg-engine): why engine" in capsys.readouterr().out
