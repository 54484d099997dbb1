"""testinfra against this machine: the containers of the stack, as Docker runs them."""

from __future__ import annotations

import json

import pytest
import testinfra
import yaml

from mnist_deploy import render
from tests.integration.conftest import TEST_PORTS

pytestmark = pytest.mark.integration
PUBLISHING = list(TEST_PORTS)  # the services the test stack publishes
SERVICES = [*PUBLISHING, "node_exporter", "release_exporter", "database"]  # and those it runs
DEFAULTS = yaml.safe_load(render.ROLE_DEFAULTS.read_text())
PUBLISHED = {service: f"{DEFAULTS[f'mnist_stack_{service}_port']}/tcp" for service in PUBLISHING}


@pytest.fixture(scope="module")
def host():
    return testinfra.get_host("local://")


@pytest.fixture
def container(stack, host, request):
    if stack.project is None:
        pytest.skip("container checks need the stack this suite starts (not --backend-url)")
    name = f"{stack.project}-{request.param}-1"
    return request.param, host.docker(name)


@pytest.mark.parametrize("container", SERVICES, indirect=True)
def test_container_is_running_and_healthy(container):
    _, docker = container
    assert docker.is_running
    assert docker.inspect()["State"]["Health"]["Status"] == "healthy"


@pytest.mark.parametrize("container", SERVICES, indirect=True)
def test_container_runs_as_a_non_root_user(container, host):
    _, docker = container
    uid = host.check_output(f"docker exec {docker.name} id -u")
    assert uid != "0"


@pytest.mark.parametrize("container", SERVICES, indirect=True)
def test_container_is_hardened_and_limited(container):
    _, docker = container
    config = docker.inspect()["HostConfig"]
    assert config["ReadonlyRootfs"] is True
    assert config["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in config["SecurityOpt"]
    assert config["Memory"] > 0 and config["NanoCpus"] > 0 and config["PidsLimit"] > 0
    assert config["LogConfig"]["Config"]["max-size"]


@pytest.mark.parametrize("container", PUBLISHING, indirect=True)
def test_only_the_intended_port_is_published_on_loopback(container, stack):
    service, docker = container
    bindings = {port: b for port, b in docker.inspect()["NetworkSettings"]["Ports"].items() if b}
    assert list(bindings) == [PUBLISHED[service]]
    assert {b["HostIp"] for b in bindings[PUBLISHED[service]]} == {"127.0.0.1"}


@pytest.mark.parametrize("container", ["backend"], indirect=True)
def test_backend_root_filesystem_refuses_writes(container, host):
    _, docker = container
    result = host.run(f"docker exec {docker.name} python3 -c \"open('/app/x', 'w')\"")
    assert result.rc != 0 and "Read-only file system" in result.stderr


def test_published_ports_listen_on_loopback_only(stack, host):
    if stack.project is None:
        pytest.skip("needs the stack this suite starts")
    for url in (stack.backend, stack.frontend, stack.prometheus):
        port = url.rsplit(":", 1)[1]
        assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_images_are_tagged_with_release_not_latest(stack, host):
    if stack.project is None:
        pytest.skip("needs the stack this suite starts")
    images = json.loads(
        host.check_output(f"docker inspect --format '{{{{json .Config.Image}}}}' {stack.project}-backend-1")
    )
    assert not images.endswith(":latest") and images.startswith("mnist-backend:")
