"""The stack's settings rules, which both Invoke's renderer and the role's validate.yml apply."""

import pytest
from ansible_collections.mnist.deploy.plugins.filter.releases import stack_problems
from ansible_collections.mnist.deploy.plugins.module_utils.rules import problems

PEM = {
    "mnist_stack_tls_certificate": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----",
    "mnist_stack_tls_private_key": "-----BEGIN EC PRIVATE KEY-----\nx\n",  # pragma: allowlist secret
}

DEFAULT = "ChangeMe"  # pragma: allowlist secret (a default the rules refuse)
SHORT = "short"  # pragma: allowlist secret (a test value)


def host(env="production", **values):
    return {"mnist_stack_env": env, "mnist_stack_keep_releases": 5, **values}


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        (host(mnist_stack_grafana_enabled=True), "mnist_stack_grafana_admin_password is required"),
        (host(mnist_stack_grafana_enabled=True, mnist_stack_grafana_admin_password=DEFAULT), "or a default"),
        (host(mnist_stack_grafana_enabled=True, mnist_stack_grafana_admin_password=SHORT), "too short"),
        (host(mnist_stack_proxy_enabled=True), "needs mnist_stack_tls_certificate"),
        (host(mnist_stack_proxy_enabled="yes", mnist_stack_tls_certificate="x"), "(PEM)"),
        (host(mnist_stack_backend_published=True, mnist_stack_backend_replicas=2), "backend has several replicas"),
        (host(mnist_stack_keep_releases=1), "at least the current and the previous"),
    ],
)
def test_each_rule_names_the_variable_and_what_to_do(variables, says):
    found = problems(variables)
    assert len(found) == 1 and says in found[0], found


def test_a_sound_host_has_no_problem_and_dev_may_keep_a_short_password():
    sound = host(mnist_stack_grafana_enabled=True, mnist_stack_grafana_admin_password="a-long-real-one", **PEM)
    assert problems({**sound, "mnist_stack_proxy_enabled": True}) == []
    assert problems(host("dev", mnist_stack_grafana_enabled=True, mnist_stack_grafana_admin_password=SHORT)) == []
    assert stack_problems({**sound, "mnist_stack_grafana_enabled": "false"}) == []  # Ansible strings count too


def test_no_message_quotes_a_secret():
    secret = "hunter2"  # pragma: allowlist secret (a test value)
    found = problems(host(mnist_stack_grafana_enabled=True, mnist_stack_grafana_admin_password=secret))
    assert found and all(secret not in message for message in found)
