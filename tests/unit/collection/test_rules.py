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


@pytest.mark.parametrize("env", ["staging", "production"])
def test_the_database_needs_a_real_password_where_secrets_must_be_real(env):
    assert (
        "mnist_stack_database_password is required when database is enabled"
        in problems(host(env, mnist_stack_database_enabled=True))[0]
    )
    weak = {"mnist_stack_database_password": "postgres"}  # pragma: allowlist secret (a default the rules refuse)
    sound = {"mnist_stack_database_password": "a-long-real-one"}  # pragma: allowlist secret (a test value)
    assert "too short" in problems(host(env, mnist_stack_database_enabled=True, **weak))[0]
    assert problems(host(env, mnist_stack_database_enabled=True, **sound)) == []


def test_each_enabled_services_password_becomes_its_compose_secret_and_the_role_hands_over_exactly_those():
    from pathlib import Path

    import yaml
    from ansible_collections.mnist.deploy.plugins.module_utils import services

    variables = {
        "mnist_stack_grafana_enabled": "false",
        "mnist_stack_grafana_admin_password": "unused-here",  # pragma: allowlist secret (a test value)
        "mnist_stack_database_enabled": True,
        "mnist_stack_database_password": "a-long-real-one",  # pragma: allowlist secret (a test value)
    }
    assert services.password_files(variables) == {"database_password": variables["mnist_stack_database_password"]}
    install = Path(__file__).resolve().parents[3] / "roles" / "mnist_stack" / "tasks" / "install.yml"
    (task,) = [t for t in yaml.safe_load(install.read_text()) if "mnist.deploy.install_files" in t]
    assert tuple(task["vars"]["__mnist_stack_passwords"]) == services.PASSWORD_VARIABLES
