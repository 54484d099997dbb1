"""Telling the team: one JSON message per deploy, rollback or failure, posted to the environment's webhooks.

The webhooks are inventory values (`mnist_notify_webhooks`, a list of {name, url}); a URL may name a vaulted
variable (`url: "{{ vault_slack_webhook }}"`), so it is never committed in clear. The message carries a Slack-style
`text` line for people and the fields for machines: environment, action, release, model version, who, result,
duration and each host's outcome. A webhook that fails (refused, times out, answers an error) is a warning: the
deploy's own result stands. With no webhook listed, nothing is sent anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jinja2

from mnist_deploy.environment import Environment
from mnist_deploy.errors import DeployError

VARIABLE = "mnist_notify_webhooks"
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Webhook:
    name: str
    url: str


def webhooks(env: str) -> list[Webhook]:
    """ENV's webhooks, their URLs resolved (vault included); DeployError naming what is wrong, before a deploy
    changes anything."""
    environment = Environment.read(env)
    found: dict[str, Webhook] = {}
    for host in environment.hosts.values():
        listed = host.variables.get(VARIABLE) or []
        if not isinstance(listed, list):
            raise DeployError(f"{env}/{host.name}: {VARIABLE} must be a list of {{name, url}}")
        for number, entry in enumerate(listed, 1):
            where = f"{env}/{host.name}: {VARIABLE} entry {number}"
            if not isinstance(entry, dict) or not entry.get("name") or not entry.get("url"):
                raise DeployError(f"{where} needs a name and a url")
            try:  # bandit B701: a URL, not HTML
                url = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(str(entry["url"]))  # nosec B701
                resolved = url.render(host.variables).strip()
            except jinja2.TemplateError as exc:
                raise DeployError(f"{where} ({entry['name']}): its url cannot be resolved: {exc}") from exc
            parts = urlsplit(resolved)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise DeployError(f"{where} ({entry['name']}): its url is not an http(s) URL")
            found.setdefault(str(entry["name"]), Webhook(str(entry["name"]), resolved))
    return list(found.values())


def message(
    env: str,
    action: str,
    by: str,
    seconds: float,
    hosts: list[dict[str, Any]],
    error: str = "",
    release: str = "",
    model_version: str = "",
) -> dict[str, Any]:
    """The message for an ACTION (deploy, rollback) on ENV that ended with ERROR ('' when it succeeded); HOSTS are
    the hosts' results (each: host, event, release, model_version, seconds). RELEASE and MODEL_VERSION default to
    what every host reports."""
    served = sorted({str(h.get("release", "")) for h in hosts if h.get("release")})
    release = release or (served[0] if len(served) == 1 else ", ".join(served))
    versions = sorted({str(h.get("model_version", "")) for h in hosts if h.get("model_version")})
    model_version = model_version or (versions[0] if len(versions) == 1 else "")
    result = "failed" if error else "succeeded"
    per_host = [
        {
            "host": h.get("host"),
            "event": h.get("event"),
            "release": h.get("release"),
            "model_version": h.get("model_version"),
            "seconds": round(float(h.get("seconds") or 0), 1),
        }
        for h in hosts
    ]
    text = (
        f"{'✅' if not error else '❌'} {action} of release {release or '?'}"
        + (f" (model {model_version[:12]})" if model_version else "")
        + f" on {env} by {by} {result} in {seconds:.0f} s"
        + (f": {error}" if error else "")
    )
    return {
        "text": text,
        "environment": env,
        "action": action,
        "release": release,
        "model_version": model_version,
        "by": by,
        "result": result,
        "error": error,
        "duration_s": round(seconds, 1),
        "hosts": per_host,
    }


def send(hooks: list[Webhook], payload: dict[str, Any], timeout: float = TIMEOUT_S) -> list[str]:
    """Post PAYLOAD to each webhook; a warning per webhook that did not take it (never an exception)."""
    warnings = []
    for hook in hooks:
        try:
            answer = httpx.post(hook.url, json=payload, timeout=timeout)
            if answer.status_code >= 300:
                warnings.append(f"webhook {hook.name} answered HTTP {answer.status_code}")
        except httpx.HTTPError as exc:
            warnings.append(f"webhook {hook.name} was not reached: {type(exc).__name__}: {exc}")
    return warnings
