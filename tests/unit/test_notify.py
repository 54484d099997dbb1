"""Deploy notifications (mnist_deploy/notify.py and deploy.notified), without hosts: the sandbox scenario posts
real ones to a receiver."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
import respx

from mnist_deploy import deploy, notify
from mnist_deploy.errors import DeployError

HOSTS = [
    {"host": "web-1", "event": "deploy", "release": "aaaaaaaaaaaa", "model_version": "f" * 64, "seconds": 41.23},
    {"host": "web-2", "event": "deploy", "release": "aaaaaaaaaaaa", "model_version": "f" * 64, "seconds": 39.0},
]


def environment(monkeypatch: pytest.MonkeyPatch, **variables: object) -> None:
    host = SimpleNamespace(name="web-1", variables={"vault_hook": "https://hooks.example.test/T0/B0/x", **variables})
    monkeypatch.setattr(notify.Environment, "read", lambda env: SimpleNamespace(hosts={"web-1": host}))


def test_webhook_urls_may_come_from_vaulted_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(monkeypatch, mnist_notify_webhooks=[{"name": "team", "url": "{{ vault_hook }}"}])
    assert notify.webhooks("staging") == [notify.Webhook("team", "https://hooks.example.test/T0/B0/x")]


@pytest.mark.parametrize(
    ("listed", "says"),
    [
        ("https://x", "must be a list"),
        ([{"url": "https://x"}], "entry 1 needs a name and a url"),
        ([{"name": "team", "url": "{{ vault_missing }}"}], "team.*cannot be resolved.*vault_missing"),
        ([{"name": "team", "url": "ftp://x/y"}], "team.*not an http"),
    ],
)
def test_a_wrong_webhook_is_named_before_anything_runs(monkeypatch, listed, says) -> None:
    environment(monkeypatch, mnist_notify_webhooks=listed)
    with pytest.raises(DeployError, match=says):
        notify.webhooks("staging")


def test_the_message_says_what_happened_for_people_and_machines() -> None:
    done = notify.message("production", "deploy", "alice@ci", 84.4, HOSTS)
    assert (
        done["text"]
        == "✅ deploy of release aaaaaaaaaaaa (model ffffffffffff) on production by alice@ci succeeded in 84 s"
    )
    assert done["result"] == "succeeded" and done["duration_s"] == 84.4 and done["model_version"] == "f" * 64
    assert [h["host"] for h in done["hosts"]] == ["web-1", "web-2"] and done["hosts"][0]["seconds"] == 41.2
    failed = notify.message("production", "deploy", "alice@ci", 10, HOSTS, error="gate failed", release="bbbbbbbbbbbb")
    assert failed["result"] == "failed" and failed["release"] == "bbbbbbbbbbbb"
    assert failed["text"].startswith("❌ deploy of release bbbbbbbbbbbb") and failed["text"].endswith(": gate failed")


@respx.mock
def test_a_failing_webhook_warns_and_the_others_still_get_the_message() -> None:
    ok = respx.post("https://ok.example.test/hook").mock(return_value=httpx.Response(200))
    respx.post("https://broken.example.test/hook").mock(return_value=httpx.Response(500))
    respx.post("https://down.example.test/hook").mock(side_effect=httpx.ConnectError("refused"))
    hooks = [
        notify.Webhook("broken", "https://broken.example.test/hook"),
        notify.Webhook("down", "https://down.example.test/hook"),
        notify.Webhook("ok", "https://ok.example.test/hook"),
    ]
    warnings = notify.send(hooks, {"text": "hi"})
    assert warnings == ["webhook broken answered HTTP 500", "webhook down was not reached: ConnectError: refused"]
    assert ok.called and ok.calls.last.request.content == b'{"text":"hi"}'


def test_a_deploy_that_fails_is_posted_as_failed_and_still_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = []
    monkeypatch.setattr(notify, "webhooks", lambda env: [notify.Webhook("team", "https://x.test")])
    monkeypatch.setattr(notify, "send", lambda hooks, payload: sent.append(payload) or ["webhook team was not reached"])
    monkeypatch.setattr(deploy, "host_results", lambda env: HOSTS)
    with pytest.raises(DeployError, match="gate"):
        with deploy.notified("staging", "deploy", 0.0, check=False) as told:
            told["release"] = {"id": "bbbbbbbbbbbb", "model_version": "e" * 64}
            raise DeployError("deploy on staging failed: gate")
    assert sent[0]["result"] == "failed" and sent[0]["release"] == "bbbbbbbbbbbb"
    assert sent[0]["error"] == "deploy on staging failed: gate"


def test_a_dry_run_posts_nothing_and_reads_no_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "webhooks", lambda env: pytest.fail("a dry run read the webhooks"))
    monkeypatch.setattr(notify, "send", lambda hooks, payload: pytest.fail("a dry run posted"))
    with deploy.notified("staging", "deploy", 0.0, check=True):
        pass
