"""An alert reaches a person, end to end: a backend stopped on the stack under test fires an alert in Prometheus,
Alertmanager routes it to the inventory's receiver (a Slack-compatible webhook), and a receiver container on the
stack's network gets the firing message, then the resolved one once the backend is back.

The stack runs with the receiver and the shortened intervals of conftest.ALERTING; the rule's own `for: 1m` stays.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import RECEIVER, TEST_PORTS, Stack

pytestmark = pytest.mark.integration

ALERT = "MnistBackendMissing"
# DNS discovery drops the stopped replica within 5 s, the rule holds for 1 min and is evaluated every 5 s, then
# Alertmanager waits group_wait (2 s): about 75 s; the bound leaves room for a slow machine.
FIRES_WITHIN = 150
# Back healthy, the replica is scraped within 10 s, the next evaluation resolves the alert and Alertmanager sends it
# after group_interval (5 s).
RESOLVES_WITHIN = 90
# Prints each request's body on one line: the test reads them from the container's log.
RECEIVER_SCRIPT = """
import http.server, json
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        print(json.dumps({"path": self.path, "body": json.loads(body)}), flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", 8080), Hook).serve_forever()
"""


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def receiver(stack: Stack) -> Iterator[str]:
    """A webhook receiver on the stack's network, from the backend's image (its Python): the container's id."""
    if stack.project is None:
        pytest.skip("the alert test stops a container of the stack this suite starts (not --backend-url)")
    image = docker("inspect", "--format", "{{.Config.Image}}", f"{stack.project}-backend-1")
    name = RECEIVER.split("//")[1].split(":")[0]
    container = docker(
        "run", "--detach", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
        "--network", f"{stack.project}_internal", "--network-alias", name, "--entrypoint", "python3",
        image, "-c", RECEIVER_SCRIPT,
    )  # fmt: skip
    try:
        yield container
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True, check=False)


def received(container: str) -> list[dict]:
    """The Slack-compatible messages the receiver got: each one's attachments (title, text), in order."""
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in logs.splitlines() if line.startswith("{")]


def wait_for_message(container: str, status: str, timeout: float) -> tuple[dict, float]:
    """The first message about ALERT with STATUS (FIRING, RESOLVED) and how long it took; fails naming what came."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for message in received(container):
            titles = [attachment["title"] for attachment in message["body"].get("attachments", [])]
            if any(title.startswith(f"[{status}") and ALERT in title for title in titles):
                return message, time.monotonic() - started
        time.sleep(2)
    got = [a["title"] for m in received(container) for a in m["body"].get("attachments", [])]
    raise AssertionError(f"no {status} message about {ALERT} within {timeout} s; the receiver got {got}")


def test_a_stopped_backend_pages_the_receiver_then_resolves(stack, receiver):
    backend = f"{stack.project}-backend-1"
    # Alertmanager runs and has the inventory's route: a page goes to the e2e receiver.
    status = httpx.get(f"http://127.0.0.1:{TEST_PORTS['alertmanager']}/api/v2/status", timeout=10).json()
    assert "receiver: e2e" in status["config"]["original"]
    docker("stop", backend)
    try:
        firing, fired_after = wait_for_message(receiver, "FIRING", FIRES_WITHIN)
    finally:
        docker("start", backend)
    (attachment,) = firing["body"]["attachments"]
    assert firing["path"] == "/hook" and firing["body"]["channel"] == "#e2e"
    assert "Prometheus finds no backend replica to scrape (dev/localhost)" in attachment["text"]
    resolved, resolved_after = wait_for_message(receiver, "RESOLVED", RESOLVES_WITHIN)
    assert resolved["body"]["attachments"][0]["text"].startswith("resolved: ")
    print(f"firing after {fired_after:.0f} s (bound {FIRES_WITHIN}), resolved {resolved_after:.0f} s after restart")
    # The backend serves again for the tests that follow.
    deadline = time.monotonic() + 60
    while not ready(stack.backend):
        assert time.monotonic() < deadline, "the restarted backend is not ready after 60 s"
        time.sleep(1)


def ready(backend: str) -> bool:
    try:
        return httpx.get(f"{backend}/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
