"""mnist.deploy's engine decision: an engine already on a host is kept; only what is missing is added."""

import json

import pytest
from ansible_collections.mnist.deploy.plugins.module_utils.engine import (
    candidate_version,
    compose_problem,
    elf_machine,
    installed_packages,
    parse_version,
    plan,
)

BASE = ["python3", "python3-apt", "openssh-server"]


@pytest.mark.parametrize("engine", ["docker-ce", "docker.io", "moby-engine", "containerd.io"])
def test_an_engine_package_is_kept_even_when_the_engine_is_stopped(engine):
    result = plan([*BASE, engine, "python3-requests"], engine_answers=False, compose_version="2.40.3")
    assert result["keep_engine"] and not result["install_engine"]
    assert result["install"] == [] and not result["copy_compose"]
    assert engine in result["reason"]


def test_docker_ce_from_dockers_repository_never_gets_docker_io_beside_it():
    installed = [*BASE, "docker-ce", "docker-ce-cli", "containerd.io", "docker-compose-plugin"]
    result = plan(installed, engine_answers=True, compose_version="v2.29.1")
    assert "docker.io" not in result["install"]
    assert result["install"] == ["python3-requests"]  # the SDK's dependency is all it lacks
    assert not result["copy_compose"]


def test_an_engine_that_answers_without_any_known_package_is_kept():
    result = plan(BASE, engine_answers=True, compose_version="2.26.1")
    assert result["keep_engine"] and result["engine_packages"] == []
    assert "answers" in result["reason"]


def test_a_host_without_an_engine_gets_the_sources_packages():
    assert plan(BASE, False, None, source="debian")["install"] == ["docker.io", "python3-requests"]
    upstream = plan(BASE, False, None, source="upstream")
    assert upstream["install"] == [
        "docker-ce",
        "docker-ce-cli",
        "containerd.io",
        "docker-compose-plugin",
        "python3-requests",
    ]
    assert not upstream["copy_compose"]  # docker-compose-plugin brings it


def test_the_hosts_own_compose_is_kept_and_one_too_old_is_refused_not_shadowed():
    installed = [*BASE, "docker.io", "docker-compose", "python3-requests"]
    kept = plan(installed, True, "2.26.1+ds1-1")  # trixie's docker-compose package
    assert not kept["copy_compose"] and kept["problem"] == "" and "keeping the host's Compose" in kept["reason"]
    old = plan(installed, True, "2.17.9", compose_candidate="2.26.1-4")
    assert not old["copy_compose"] and old["install"] == []
    assert "older than 2.18.0" in old["problem"] and "upgrade the host's own Compose" in old["problem"]


def test_a_host_without_compose_gets_its_packages_compose_v2_else_the_controllers_plugin():
    installed = [*BASE, "docker.io", "python3-requests"]
    trixie = plan(installed, True, None, compose_candidate="2.26.1-4", host_arch="x86_64", plugin_arch="x86_64")
    assert trixie["install"] == ["docker-compose"] and not trixie["copy_compose"]
    # Debian 12's docker-compose is Compose v1 (1.29): the controller's plugin instead.
    bookworm = plan(installed, True, None, compose_candidate="1.29.2-3", host_arch="x86_64", plugin_arch="x86_64")
    assert bookworm["install"] == [] and bookworm["copy_compose"] and bookworm["problem"] == ""
    assert plan(installed, True, None)["copy_compose"]  # no candidate known (no package lists)


def test_the_controllers_plugin_is_never_copied_to_a_host_of_another_machine():
    result = plan([*BASE, "docker.io"], True, None, host_arch="aarch64", plugin_arch="x86_64")
    assert not result["copy_compose"]
    assert "built for x86_64, the host is aarch64" in result["problem"]


def test_packages_versions_and_machines_are_read_from_what_the_tools_print():
    dpkg = "ii  docker.io\nrc  docker-ce\nii  libc6:amd64\nun  python3-apt\n"
    assert installed_packages(dpkg) == ["docker.io", "libc6"]  # removed (rc) and unknown (un) are not installed
    policy = "docker-compose:\n  Installed: (none)\n  Candidate: 2.26.1-4\n  Version table:\n"
    assert candidate_version(policy) == "2.26.1-4"
    assert candidate_version("docker-compose:\n  Installed: (none)\n  Candidate: (none)\n") == ""
    assert candidate_version("") == ""
    header = b"\x7fELF\x02\x01\x01" + bytes(11) + (62).to_bytes(2, "little")
    assert elf_machine(header) == "x86_64"
    assert elf_machine(header[:18] + (183).to_bytes(2, "little")) == "aarch64"
    with pytest.raises(ValueError, match="not an ELF"):
        elf_machine(b"#!/bin/sh\n" + bytes(10))


def test_an_unknown_source_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose one of debian, upstream"):
        plan(BASE, False, None, source="snap")


@pytest.mark.parametrize(
    ("text", "version"), [("v2.40.3", (2, 40, 3)), ("2.26.1+ds1", (2, 26, 1)), ("2.18", (2, 18, 0)), ("", None)]
)
def test_versions_are_read_as_compose_prints_them(text, version):
    assert parse_version(text) == version


@pytest.mark.parametrize(
    ("printed", "problem"),
    [
        ("v2.40.3", ""),
        ("2.18.0", ""),
        ("2.26.1+ds1-1", ""),
        ("2.17.9", "Compose 2.17.9 is older than 2.18.0 (community.docker.docker_compose_v2 needs it)"),
        ("", "Compose v2 does not answer (`docker compose version` printed '')"),
        ("docker: 'compose' is not a docker command.", "Compose v2 does not answer"),
    ],
)
def test_the_compose_check_after_bootstrap_says_why_it_fails(printed, problem):
    said = compose_problem(printed, "2.18.0")
    assert said.startswith(problem) and (said == "") == (problem == "")


def test_a_minimum_that_is_not_a_version_is_refused():
    with pytest.raises(ValueError, match="is not a version"):
        compose_problem("2.40.3", "latest")


def test_daemon_json_gets_live_restore_and_keeps_what_the_owner_set():
    from ansible_collections.mnist.deploy.plugins.module_utils.engine import daemon_config

    owner = '{"features": {"containerd-snapshotter": true}, "log-driver": "journald"}'
    config, changed = daemon_config(owner, {"live-restore": True})
    assert changed and config == {
        "features": {"containerd-snapshotter": True},
        "log-driver": "journald",
        "live-restore": True,
    }
    assert daemon_config(json.dumps(config), {"live-restore": True}) == (config, False)  # set once
    assert daemon_config(None, {"live-restore": True}) == ({"live-restore": True}, True)  # no file yet
    assert daemon_config("  \n", {"live-restore": True})[1]
    for broken in ('{"live-restore": tru', '["live-restore"]'):
        with pytest.raises(ValueError, match="mend it by hand"):
            daemon_config(broken, {"live-restore": True})
