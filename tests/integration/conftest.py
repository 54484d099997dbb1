"""The stack under test: the real images on the real engine, under its own project name and ports.

With --backend-url (and --frontend-url, --prometheus-url) the same tests check a stack that already runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import ROOT

TEST_PROJECT = "mnist-test"
TEST_PORTS = {"backend": 18000, "frontend": 18501, "prometheus": 19090, "alertmanager": 19093}
OUT = ROOT / "build" / "test-stack"
STACK_ROOT = OUT / "root"  # mnist_stack_root: <root>/<project>/ is what a deploy makes on a host
# Alertmanager's one receiver, a Slack-compatible webhook: the container test_alerts.py starts on the stack's network.
RECEIVER = "http://alert-receiver:8080/hook"
# The stack under test runs what servers run (Alertmanager, the node exporter), with intervals shortened so that an
# alert's notification takes seconds after its rule fires, not minutes.
ALERTING = {
    "mnist_stack_alert_receivers": {"e2e": {"slack_url": RECEIVER, "slack_channel": "#e2e"}},
    "mnist_stack_alert_routes": {"page": "e2e", "ticket": "e2e"},
    "mnist_stack_alert_group_wait": "2s",
    "mnist_stack_alert_group_interval": "5s",
    "mnist_stack_alert_repeat_interval": "1h",
}


@dataclass(frozen=True)
class Stack:
    backend: str
    frontend: str
    prometheus: str
    timeout: float
    project: str | None  # None: a stack we did not start, so no container checks


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    option = request.config.getoption
    timeout = option("--timeout")
    if option("--backend-url"):
        yield Stack(
            option("--backend-url").rstrip("/"),
            option("--frontend-url").rstrip("/"),
            option("--prometheus-url").rstrip("/"),
            timeout,
            None,
        )
        return
    from mnist_deploy import stack as local_stack

    extra = {
        "mnist_stack_project": TEST_PROJECT,
        "mnist_stack_log_level": "INFO",
        **local_stack.ON_DEMAND,
        **ALERTING,
        # The release exporter reads the stack's folder as a deploy leaves it: here, one the `recorded` fixture makes.
        "mnist_stack_release_exporter_enabled": True,
        "mnist_stack_root": str(STACK_ROOT),
        # Corrections in PostgreSQL, as staging and production keep them (dev's default is SQLite).
        "mnist_stack_database_enabled": True,
        "mnist_stack_database_password": "integration-only-password",  # pragma: allowlist secret (a test value)
    }
    extra.update({f"mnist_stack_{service}_host_port": port for service, port in TEST_PORTS.items()})
    try:
        local_stack.up("dev", extra=extra, out_root=OUT)
        yield Stack(
            *(f"http://127.0.0.1:{TEST_PORTS[s]}" for s in ("backend", "frontend", "prometheus")),
            timeout=timeout,
            project=TEST_PROJECT,
        )
    finally:
        if (OUT / "dev" / "localhost" / "compose.yaml").is_file():
            local_stack.down("dev", volumes=True, out_root=OUT)
        shutil.rmtree(OUT, ignore_errors=True)


@dataclass(frozen=True)
class Recorded:
    home: Path
    release: str
    host: str


@pytest.fixture(scope="session")
def recorded(stack: Stack) -> Recorded:
    """The stack's folder as the deploy's record step leaves it on a host (the collection's own functions): the
    release's folder with the files rendered for this stack and its record, `current`, and serving.json with every
    container that runs now. The release exporter compares the machine with it from then on."""
    if stack.project is None:
        pytest.skip("the release exporter's record is made for the stack this suite starts")
    import json
    import subprocess

    from mnist_deploy.collection import releases

    rendered, home, release = OUT / "dev" / "localhost", STACK_ROOT / TEST_PROJECT, "0123456789ab"
    manifest = json.loads((OUT / "dev" / "manifest.json").read_text())
    folder = home / "releases" / release
    shutil.copytree(rendered, folder, dirs_exist_ok=True)
    record = {"id": release, "env": "dev", "model_version": "0" * 64, "git_sha": "test", "host": "localhost"}
    (folder / "release.json").write_text(json.dumps({**record, "files": manifest["hosts"]["localhost"]["files"]}))
    listed = subprocess.run(
        ["docker", "ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"], capture_output=True, text=True, check=True
    )
    running = releases.container_names(
        [{"Id": cid, "Names": [f"/{name}"]} for cid, name in (line.split() for line in listed.stdout.splitlines())]
    )
    line = releases.audit_line("2026-12-03T00:00:00Z", "deploy", release, "tests", "localhost", "")
    releases.record(str(home), release, "", "deploy", line, running=running)
    return Recorded(home, release, "localhost")
