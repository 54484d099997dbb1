"""The environment model: one inventory read into hosts with the services they run and what those publish."""

import pytest

from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError
from tests.unit.test_render import TAG, TLS


def test_dev_publishes_its_services_on_the_loopback():
    dev = Environment.read("dev", {"mnist_stack_image_tag": TAG}).checked()
    services = dev.hosts["localhost"].services
    assert list(services) == ["backend", "frontend", "prometheus"]
    assert {name: s.published for name, s in services.items()} == {
        "backend": (("127.0.0.1", 8000),),
        "frontend": (("127.0.0.1", 8501),),
        "prometheus": (("127.0.0.1", 9090),),
    }


def test_the_sandbox_runs_replicas_behind_a_proxy_that_alone_listens():
    sandbox = Environment.read("sandbox", {"mnist_stack_image_tag": TAG, **TLS}).checked()
    assert sorted(sandbox.hosts) == ["target-1", "target-2"]
    services = sandbox.hosts["target-1"].services
    assert services["backend"].replicas == 2 and services["backend"].published == ()
    listening = {address for service in services.values() for address in service.published}
    assert listening == {("0.0.0.0", 80), ("0.0.0.0", 443)}
    # The connection settings ssh_config is written from are the inventory's own.
    assert sandbox.hostvars["target-1"]["ansible_user"] == "deploy"
    assert "mnist_stack_backend_port" not in sandbox.hostvars["target-1"]


def test_the_rules_refuse_a_host_by_name():
    staging = Environment.read("staging", {"mnist_stack_image_tag": TAG})  # no certificate in a fresh clone
    with pytest.raises(DeployError, match=r"^staging/\S+: .*mnist_stack_tls_certificate"):
        staging.checked()
