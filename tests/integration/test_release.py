"""The release exporter on the live stack (module_utils/drift.py): what the last deploy recorded, and drift from it
set within one scrape when a container is started or a release file edited by hand, cleared when undone."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.integration.conftest import Recorded, Stack

pytestmark = pytest.mark.integration
SCRAPE_INTERVAL = 5  # the dev inventory's mnist_stack_prometheus_scrape_interval
# One scrape interval, plus Prometheus's query lag and the exporter's own time: what "within one scrape" allows.
WITHIN = 2 * SCRAPE_INTERVAL + 5


def query(stack: Stack, expr: str) -> list[dict]:
    answer = httpx.get(f"{stack.prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def drift_items(stack: Stack, recorded: Recorded) -> set[str]:
    return {s["metric"]["item"] for s in query(stack, f'mnist_release_drift_item{{host="{recorded.host}"}}')}


def wait_for(stack: Stack, expr: str, value: str, timeout: float) -> float:
    """Seconds until EXPR's single series has VALUE; fails saying what it had."""
    started = time.monotonic()
    found: list[dict] = []
    while time.monotonic() - started < timeout:
        found = query(stack, expr)
        if len(found) == 1 and found[0]["value"][1] == value:
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"{expr} is not {value} after {timeout} s: {found}")


def test_the_record_is_exported_and_the_stack_does_not_drift(stack, recorded):
    wait_for(stack, f'mnist_release_drift{{host="{recorded.host}"}}', "0", 60)
    (info,) = query(stack, "mnist_release_info")
    assert info["metric"]["release"] == recorded.release and info["metric"]["host"] == recorded.host
    (deployed,) = query(stack, "mnist_release_deployed_timestamp_seconds")
    assert abs(float(deployed["value"][1]) - time.time()) < 3600


def test_a_container_started_by_hand_is_drift_within_one_scrape(stack, recorded):
    wait_for(stack, f'mnist_release_drift{{host="{recorded.host}"}}', "0", 60)
    image = subprocess.run(
        ["docker", "inspect", "--format", "{{.Config.Image}}", f"{stack.project}-backend-1"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    intruder = subprocess.run(
        ["docker", "run", "--detach", "--network", "none", "--entrypoint", "sleep", image, "300"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        took = wait_for(stack, f'mnist_release_drift{{host="{recorded.host}"}}', "1", WITHIN)
        assert f"container {intruder[:12]} runs but no deploy started it" in drift_items(stack, recorded)
        print(f"drift seen {took:.1f} s after `docker run` (scrape interval {SCRAPE_INTERVAL} s)")
    finally:
        subprocess.run(["docker", "rm", "--force", intruder], capture_output=True, check=False)
    wait_for(stack, f'mnist_release_drift{{host="{recorded.host}"}}', "0", WITHIN)


def test_a_release_file_edited_by_hand_is_drift(stack, recorded):
    rules = recorded.home / "releases" / recorded.release / "prometheus" / "rules.yml"
    original = rules.read_bytes()
    rules.write_bytes(original + b"# edited by hand\n")
    try:
        wait_for(stack, f'mnist_release_drift{{host="{recorded.host}"}}', "1", WITHIN)
        edited = f"file releases/{recorded.release}/prometheus/rules.yml differs from the release"
        assert edited in drift_items(stack, recorded)
    finally:
        rules.write_bytes(original)
    wait_for(stack, f'mnist_release_drift{{host="{recorded.host}"}}', "0", WITHIN)
