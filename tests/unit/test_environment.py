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


def encrypt_inline(password_file, value):
    """VALUE as `ansible-vault encrypt_string` writes it into a group_vars file: `!vault |` and the ciphertext."""
    import subprocess
    import sys
    from pathlib import Path

    ansible_vault = Path(sys.executable).parent / "ansible-vault"
    out = subprocess.run(
        [str(ansible_vault), "encrypt_string", "--vault-password-file", str(password_file), value, "--name", "x"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split(": ", 1)[1]  # "!vault |\n          $ANSIBLE_VAULT;1.1;AES256\n          6631..."


def test_values_encrypted_inline_are_read_decrypted_and_refused_without_the_password(tmp_path, monkeypatch):
    from mnist_deploy import environment

    password = tmp_path / "vault-password"
    password.write_text("correct horse battery staple\n")
    inventory = tmp_path / "inventories" / "vaulted"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text("all:\n  hosts:\n    web-1:\n")
    hook = "https://hooks.example.org/services/T0/B0/x"  # pragma: allowlist secret
    (inventory / "group_vars" / "all" / "vault.yml").write_text(
        f"mnist_stack_grafana_admin_password: {encrypt_inline(password, 'a-long-grafana-password')}plain: kept\n"
        # inside a mapping, as a receiver's webhook may be written
        f"mnist_stack_alert_receivers:\n  oncall:\n    slack_url: {encrypt_inline(password, hook)}"
    )
    monkeypatch.setattr(environment, "INVENTORIES", tmp_path / "inventories")
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password))
    decrypted = "a-long-grafana-password"  # pragma: allowlist secret
    assert environment.read_inventory("vaulted") == {
        "web-1": {
            "mnist_stack_grafana_admin_password": decrypted,
            "plain": "kept",
            "mnist_stack_alert_receivers": {"oncall": {"slack_url": hook}},
        }
    }
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE")
    with pytest.raises(
        DeployError,
        match=r"cannot decrypt mnist_stack_alert_receivers.oncall.slack_url, mnist_stack_grafana_admin_password, "
        r"encrypted inline \(!vault\)",
    ):
        environment.read_inventory("vaulted")


def test_values_inside_mappings_and_lists_are_resolved_as_ansible_does():
    """A receiver's webhook names a vaulted variable: `slack_url: "{{ vault_slack_url }}"` inside a mapping."""
    extra = {
        "mnist_stack_image_tag": TAG,
        "vault_slack_url": "https://hooks.example.org/x",  # pragma: allowlist secret
        "mnist_stack_alert_receivers": {
            "oncall": {"slack_url": "{{ vault_slack_url }}", "email_to": ["{{ 'a' }}@b.org"]}
        },
    }
    receivers = Environment.read("dev", extra).hosts["localhost"].variables["mnist_stack_alert_receivers"]
    assert receivers == {"oncall": {"slack_url": "https://hooks.example.org/x", "email_to": ["a@b.org"]}}
    with pytest.raises(DeployError, match="variable mnist_stack_alert_receivers: 'missing' is undefined"):
        Environment.read("dev", {**extra, "mnist_stack_alert_receivers": {"x": {"slack_url": "{{ missing }}"}}})
