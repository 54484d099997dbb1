"""Alertmanager's configuration, made from the inventory in one place: Invoke's renderer writes it (and checks it with
amtool), the role installs the receivers' secrets beside it, and the settings rules (rules.py) refuse what cannot
work before anything is rendered or changed.

The inventory says who hears what (role defaults: roles/mnist_stack/defaults/main.yml):
  mnist_stack_alert_receivers: {NAME: {slack_url, slack_channel, email_to}}  (slack_url is a secret: vault)
  mnist_stack_alert_routes: {SEVERITY: NAME}  for the severities the alert rules use (SEVERITIES)
  mnist_stack_alert_smtp: {smarthost, from, username, password, require_tls}  (password: vault)
Secrets never enter the rendered config: it names files (api_url_file, smtp_auth_password_file) that the deploy
installs beside it, readable by Alertmanager's user alone.
"""

from __future__ import annotations

import hashlib
import re

# The severities templates/prometheus/rules.yml gives its alerts: a page wakes someone (an SLO burning fast, the API
# down), a ticket is for working hours (a slow burn, drift, a host filling up).
SEVERITIES = ("page", "ticket")
# Where the config finds the secrets inside the container; the deploy installs them in <fingerprint>/secrets/.
SECRETS_DIR = "/etc/alertmanager/secrets"
# Alerts that a broader one makes redundant on the same host: when no backend replica runs at all, the alerts about
# single replicas and the availability they cost say nothing more (a host with no API is one page, not five).
NO_BACKEND = "MnistBackendMissing"
REDUNDANT_WITHOUT_BACKEND = (
    "MnistBackendDown",
    "MnistBackendReplicasMissing",
    "MnistAvailabilityLow",
    "MnistAvailabilityBudgetBurnFast",
    "MnistAvailabilityBudgetBurnSlow",
)
NOBODY = "nobody"  # the receiver of what no route claims: Alertmanager drops it (and shows it in its UI)
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# The text each Slack-compatible message carries: one line per alert, with where it fires.
SLACK_TEXT = (
    '{{ range .Alerts }}{{ if eq .Status "resolved" }}resolved: {{ end }}{{ .Annotations.summary }}'
    " ({{ .Labels.env }}/{{ .Labels.host }})\n{{ end }}"
)


def _settings(variables: dict) -> tuple:
    receivers = variables.get("mnist_stack_alert_receivers") or {}
    routes = variables.get("mnist_stack_alert_routes") or {}
    smtp = variables.get("mnist_stack_alert_smtp") or {}
    return receivers, routes, smtp


def _emails(receiver: dict) -> list:
    found = receiver.get("email_to") or []
    return [found] if isinstance(found, str) else list(found)


def problems(variables: dict) -> list:
    """What keeps the inventory's alerting from working, as sentences naming the variable (never a value)."""
    receivers, routes, smtp = _settings(variables)
    found = []
    if not isinstance(receivers, dict) or not isinstance(routes, dict) or not isinstance(smtp, dict):
        return ["mnist_stack_alert_receivers, mnist_stack_alert_routes and mnist_stack_alert_smtp must be mappings"]
    for name, receiver in receivers.items():
        where = f"mnist_stack_alert_receivers.{name}"
        if not NAME.match(str(name)) or name == NOBODY:
            found.append(f"{where}: a receiver's name is lowercase letters, digits, - and _ (and not {NOBODY!r})")
            continue
        if not isinstance(receiver, dict):
            found.append(f"{where} must be a mapping (slack_url, slack_channel, email_to)")
            continue
        unknown = sorted(set(receiver) - {"slack_url", "slack_channel", "email_to"})
        if unknown:
            found.append(f"{where}: unknown keys {', '.join(unknown)} (slack_url, slack_channel, email_to)")
        if not receiver.get("slack_url") and not _emails(receiver):
            found.append(f"{where} reaches no one: give it a slack_url (in vault) or email_to")
        if receiver.get("slack_url") and not re.match(r"^https?://[^\s/]+", str(receiver["slack_url"])):
            found.append(f"{where}.slack_url is not an http(s) URL")
        if any("@" not in str(address) for address in _emails(receiver)):
            found.append(f"{where}.email_to must be e-mail addresses")
        if _emails(receiver) and not (smtp.get("smarthost") and smtp.get("from")):
            found.append(f"{where} sends e-mail: mnist_stack_alert_smtp needs smarthost (host:port) and from")
    for severity, name in routes.items():
        if severity not in SEVERITIES:
            found.append(
                f"mnist_stack_alert_routes.{severity}: the alert rules' severities are {', '.join(SEVERITIES)}"
            )
        elif name and name not in receivers:
            found.append(f"mnist_stack_alert_routes.{severity} names {name!r}, not in mnist_stack_alert_receivers")
    if smtp.get("username") and not smtp.get("password"):
        found.append("mnist_stack_alert_smtp.password is required with its username: set it in vault")
    if smtp.get("smarthost") and not re.match(r"^[^\s:]+:\d+$", str(smtp["smarthost"])):
        found.append("mnist_stack_alert_smtp.smarthost must be host:port")
    return found


def unrouted(variables: dict) -> list:
    """The severities whose alerts reach no one: worth a warning where real people should hear them."""
    receivers, routes, _ = _settings(variables)
    return [severity for severity in SEVERITIES if not routes.get(severity) or routes[severity] not in receivers]


def secret_files(variables: dict) -> dict:
    """{file name in SECRETS_DIR: content} for the secrets the config names."""
    receivers, _, smtp = _settings(variables)
    files = {
        f"{name}.slack_url": str(r["slack_url"]).strip() for name, r in sorted(receivers.items()) if r.get("slack_url")
    }
    if smtp.get("password"):
        files["smtp_password"] = str(smtp["password"])
    return files


def secrets_digest(variables: dict) -> str:
    """A digest of the secrets, for the folder's fingerprint: a changed secret is a new folder (and a restarted
    Alertmanager that reads it), an unchanged one keeps Alertmanager running."""
    digest = hashlib.sha256()
    for name, content in sorted(secret_files(variables).items()):
        digest.update(f"{name}\0{content}\0".encode())
    return digest.hexdigest()


def config(variables: dict) -> dict:
    """alertmanager.yml for one host, as data."""
    receivers, routes, smtp = _settings(variables)
    settings: dict = {"resolve_timeout": "5m"}
    if smtp.get("smarthost"):
        settings["smtp_smarthost"] = str(smtp["smarthost"])
        settings["smtp_from"] = str(smtp["from"])
        settings["smtp_require_tls"] = bool(smtp.get("require_tls", True))
        if smtp.get("username"):
            settings["smtp_auth_username"] = str(smtp["username"])
            settings["smtp_auth_password_file"] = f"{SECRETS_DIR}/smtp_password"
    made = [{"name": NOBODY}]
    for name, receiver in sorted(receivers.items()):
        entry: dict = {"name": name}
        if receiver.get("slack_url"):
            slack = {"api_url_file": f"{SECRETS_DIR}/{name}.slack_url", "send_resolved": True, "text": SLACK_TEXT}
            if receiver.get("slack_channel"):
                slack["channel"] = str(receiver["slack_channel"])
            entry["slack_configs"] = [slack]
        if _emails(receiver):
            entry["email_configs"] = [{"to": ", ".join(map(str, _emails(receiver))), "send_resolved": True}]
        made.append(entry)
    return {
        "global": settings,
        "route": {
            "receiver": NOBODY,
            "group_by": ["alertname", "env", "host"],
            "group_wait": str(variables["mnist_stack_alert_group_wait"]),
            "group_interval": str(variables["mnist_stack_alert_group_interval"]),
            "repeat_interval": str(variables["mnist_stack_alert_repeat_interval"]),
            "routes": [
                {"matchers": [f'severity="{severity}"'], "receiver": routes[severity]}
                for severity in SEVERITIES
                if routes.get(severity)
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": [f'alertname="{NO_BACKEND}"'],
                "target_matchers": [f'alertname=~"{"|".join(REDUNDANT_WITHOUT_BACKEND)}"'],
                "equal": ["env", "host"],
            },
            # An SLO's page says all its ticket would: the same SLO burning fast is burning slowly too.
            {
                "source_matchers": ['severity="page"', 'slo=~".+"'],
                "target_matchers": ['severity="ticket"', 'slo=~".+"'],
                "equal": ["env", "host", "slo"],
            },
        ],
        "receivers": made,
    }
