"""Alertmanager's configuration from the inventory (module_utils/alerting.py): the rules that refuse what cannot work,
the config itself, checked and routed by Alertmanager's own amtool, and the secrets kept out of it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_collections.mnist.deploy.plugins.module_utils import alerting
from ansible_collections.mnist.deploy.plugins.module_utils.files import release_files
from ansible_collections.mnist.deploy.plugins.module_utils.rules import problems

from mnist_deploy import render

SLACK_URL = "https://hooks.example.org/services/T000/B000/not-a-real-token"  # pragma: allowlist secret
SMTP_PASSWORD = "a-relay-password"  # pragma: allowlist secret (a test value)
DEFAULTS = yaml.safe_load(render.ROLE_DEFAULTS.read_text())
RULES = render.TEMPLATES / "prometheus" / "rules.yml"


def production(**values) -> dict:
    """A production host's variables (the role's defaults under them) with two receivers: Slack and e-mail for
    pages, e-mail for tickets."""
    return {
        **DEFAULTS,
        "mnist_stack_env": "production",
        "mnist_stack_alert_receivers": {
            "oncall": {"slack_url": SLACK_URL, "slack_channel": "#mnist-oncall", "email_to": ["oncall@example.org"]},
            "ml-team": {"email_to": "ml-team@example.org"},
        },
        "mnist_stack_alert_routes": {"page": "oncall", "ticket": "ml-team"},
        "mnist_stack_alert_smtp": {
            "smarthost": "smtp.example.org:587",
            "from": "alerts@example.org",
            "username": "alerts",
            "password": SMTP_PASSWORD,
        },
        **values,
    }


def alerting_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_a_sound_inventory_has_no_problem_and_the_defaults_route_nowhere():
    assert problems(production()) == []
    assert problems(DEFAULTS) == []
    assert alerting.unrouted(DEFAULTS) == ["page", "ticket"] and alerting.unrouted(production()) == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"mnist_stack_alert_routes": {"page": "pager"}}, "routes.page names 'pager', not in"),
        ({"mnist_stack_alert_routes": {"critical": "oncall"}}, "severities are page, ticket"),
        ({"mnist_stack_alert_receivers": {"Oncall!": {"email_to": ["a@example.org"]}}}, "a receiver's name"),
        ({"mnist_stack_alert_receivers": {"nobody": {"email_to": ["a@example.org"]}}}, "a receiver's name"),
        ({"mnist_stack_alert_receivers": {"oncall": {}}}, "reaches no one"),
        ({"mnist_stack_alert_receivers": {"oncall": {"slack_url": "hooks.example.org/x"}}}, "not an http(s) URL"),
        ({"mnist_stack_alert_receivers": {"oncall": {"email_to": ["oncall"]}}}, "must be e-mail addresses"),
        ({"mnist_stack_alert_receivers": {"oncall": {"webhook": SLACK_URL}}}, "unknown keys webhook"),
        ({"mnist_stack_alert_smtp": {}}, "needs smarthost (host:port) and from"),
        ({"mnist_stack_alert_smtp": {"smarthost": "smtp.example.org", "from": "a@example.org"}}, "host:port"),
        ({"mnist_stack_alert_smtp": {"smarthost": "s:25", "from": "a@example.org", "username": "u"}}, "password"),
    ],
)
def test_each_alerting_rule_names_the_variable_and_never_the_secret(change, says):
    found = problems(production(**change))
    assert any(says in message for message in found), found
    assert all(SLACK_URL not in message and SMTP_PASSWORD not in message for message in found)


def test_the_rules_apply_only_where_alertmanager_runs():
    broken = production(mnist_stack_alert_routes={"page": "pager"})
    assert problems({**broken, "mnist_stack_alertmanager_enabled": "false"}) == []


def test_the_config_names_secret_files_and_never_holds_a_secret():
    text = yaml.safe_dump(alerting.config(production()))
    assert SLACK_URL not in text and SMTP_PASSWORD not in text
    assert alerting.secret_files(production()) == {"oncall.slack_url": SLACK_URL, "smtp_password": SMTP_PASSWORD}
    config = alerting.config(production())
    assert config["global"]["smtp_auth_password_file"] == f"{alerting.SECRETS_DIR}/smtp_password"
    oncall = next(r for r in config["receivers"] if r["name"] == "oncall")
    assert oncall["slack_configs"][0]["api_url_file"] == f"{alerting.SECRETS_DIR}/oncall.slack_url"
    assert oncall["slack_configs"][0]["send_resolved"] is True


def test_a_changed_secret_changes_the_digest_and_an_unchanged_one_does_not():
    same = alerting.secrets_digest(production())
    assert alerting.secrets_digest(production()) == same
    other = production(mnist_stack_alert_smtp={**production()["mnist_stack_alert_smtp"], "password": "another-one"})
    assert alerting.secrets_digest(other) != same


def test_the_alert_rules_use_only_the_routed_severities_and_the_inhibitions_name_real_alerts():
    """The severities are declared in alerting.SEVERITIES: a rule with another would reach no one; an inhibition that
    names an alert the rules no longer have would silently stop working."""
    rules = alerting_rules()
    assert {rule["labels"]["severity"] for rule in rules} == set(alerting.SEVERITIES)
    names = {rule["alert"] for rule in rules}
    assert {alerting.NO_BACKEND, *alerting.REDUNDANT_WITHOUT_BACKEND} <= names
    assert {rule["labels"]["slo"] for rule in rules if "slo" in rule["labels"]} == {"availability", "latency"}


def test_the_release_installs_the_secrets_beside_the_config_for_alertmanagers_user_alone(tmp_path):
    host_dir = tmp_path / "web-1"
    (host_dir / "alertmanager").mkdir(parents=True)
    (host_dir / "compose.yaml").write_text("services: {}\n")
    (host_dir / "alertmanager" / "alertmanager.yml").write_text("route: {}\n")
    (host_dir / "alertmanager" / "fingerprint").write_text("a1\n")
    release = {"id": "0123456789ab", "env": "production", "files": {"web-1": {}}, "images": []}
    files = {
        e["path"]: e
        for e in release_files(str(host_dir), release, "web-1", "", "", alerting.secret_files(production()))
    }
    secret = files["alertmanager/a1/secrets/oncall.slack_url"]
    assert secret == {
        "path": "alertmanager/a1/secrets/oncall.slack_url",
        "content": SLACK_URL + "\n",
        "owner": "10093",
        "group": "10093",
        "mode": "0400",
    }
    assert files["alertmanager/a1/secrets/smtp_password"]["content"] == SMTP_PASSWORD + "\n"
    assert "alertmanager/a1/alertmanager.yml" in files
    # Nothing secret in the release's own folder, which keeps the rendered files.
    assert not [path for path in files if path.startswith("releases/") and "secrets" in path]


amtool = pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool: `python -m mnist_deploy.provision unit`")


def write_config(tmp_path: Path, variables: dict) -> Path:
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alerting.config(variables), sort_keys=False))
    return path


@amtool
@pytest.mark.parametrize("variables", [production(), DEFAULTS], ids=["production", "defaults"])
def test_amtool_accepts_the_config(tmp_path, variables):
    checked = subprocess.run(["amtool", "check-config", write_config(tmp_path, variables)], capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@amtool
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "MnistAvailabilityBudgetBurnFast", "severity": "page", "slo": "availability"}, "oncall"),
        ({"alertname": "MnistBackendMissing", "severity": "page"}, "oncall"),
        ({"alertname": "MnistPredictionsDrift", "severity": "ticket"}, "ml-team"),
        ({"alertname": "Watchdog", "severity": "none"}, alerting.NOBODY),
    ],
)
def test_amtool_routes_each_severity_to_its_receiver(tmp_path, labels, receiver):
    config = write_config(tmp_path, production())
    routed = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True,
        text=True,
    )
    assert routed.stdout.strip() == receiver, routed.stdout + routed.stderr
