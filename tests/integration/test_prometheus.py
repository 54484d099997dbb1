"""The real Prometheus of the stack: every target up, the rules loaded, the backend's series present."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prometheus(stack) -> str:
    if not stack.prometheus:
        pytest.skip("no --prometheus-url given")
    return stack.prometheus


def targets(prometheus: str) -> list[dict]:
    return httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]


def test_every_scrape_target_is_up(prometheus, stack):
    deadline = time.monotonic() + 60
    while True:
        active = targets(prometheus)
        if active and all(t["health"] == "up" for t in active) or time.monotonic() > deadline:
            break
        time.sleep(1)
    jobs = {t["labels"]["job"] for t in active}
    if stack.project is None:  # a stack we did not start: what it runs beyond the API is its own
        assert {"backend", "prometheus"} <= jobs
    else:  # the test stack runs what a server runs (conftest)
        assert jobs == {"backend", "prometheus", "alertmanager", "node", "release"}
    assert all(t["health"] == "up" for t in active), [(t["scrapeUrl"], t["lastError"]) for t in active]


def test_alert_and_recording_rules_are_loaded(prometheus):
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    rules = {r["name"]: r["type"] for g in groups for r in g["rules"]}
    assert {
        "MnistAvailabilityLow",
        "MnistBackendDown",
        "MnistBackendMissing",
        "MnistContainerCpuHigh",
        "MnistContainerMemoryHigh",
        "MnistModelVersionsDiffer",
        "MnistAvailabilityBudgetBurnFast",
        "MnistAvailabilityBudgetBurnSlow",
        "MnistLatencyBudgetBurnFast",
        "MnistLatencyBudgetBurnSlow",
    } <= set(rules)
    assert rules["mnist:predict_latency_seconds:p95_5m"] == "recording"
    windows = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    for sli in ("availability_errors", "latency_slow"):
        assert all(rules[f"mnist:slo_{sli}:ratio_rate{window}"] == "recording" for window in windows)
    assert all(r["health"] == "ok" for g in groups for r in g["rules"])


def test_backend_model_version_reaches_prometheus(prometheus, stack):
    version = httpx.get(f"{stack.backend}/ready", timeout=5).json()["model_version"]
    deadline = time.monotonic() + 60
    while True:
        result = httpx.get(f"{prometheus}/api/v1/query", params={"query": "mnist_model_info"}, timeout=5).json()
        series = result["data"]["result"]
        if series or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert [s["metric"]["version"] for s in series] == [version]


def test_predictions_like_mnists_test_set_score_a_small_divergence(prometheus, stack, mnist_sample):
    """The model-health rules on the live Prometheus: after 300 of MNIST's test digits, the predicted digits'
    Jensen-Shannon divergence from the training labels is recorded, and far below the drift alert's 0.1; the share
    of predictions below 90 % confidence is recorded for the version served."""
    images, _ = mnist_sample
    for start in range(0, 300, 50):  # within the batch endpoint's limit (mnist_stack_backend_max_batch)
        body = {"images": [(d / 255.0).ravel().tolist() for d in images[start : start + 50]]}
        answer = httpx.post(f"{stack.backend}/api/v1/predict/batch", json=body, timeout=stack.timeout)
        assert answer.status_code == 200, answer.text
    query = {"query": "mnist:predicted_digit:js_divergence1h"}
    deadline = time.monotonic() + 60
    while True:
        series = httpx.get(f"{prometheus}/api/v1/query", params=query, timeout=5).json()["data"]["result"]
        if series or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(series) == 1, series
    assert 0 <= float(series[0]["value"][1]) < 0.1, series
    version = httpx.get(f"{stack.backend}/ready", timeout=5).json()["model_version"]
    query = {"query": "mnist:prediction_low_confidence:ratio_rate1h"}
    low = httpx.get(f"{prometheus}/api/v1/query", params=query, timeout=5).json()["data"]["result"]
    assert [s["metric"]["version"] for s in low] == [version]  # clean digits: few below 90 % sure
    assert float(low[0]["value"][1]) < 0.05, low


def test_every_dashboard_panel_has_data(prometheus, recorded):
    """Grafana cannot run here: each panel's queries (and the deploy markers') run on the live Prometheus instead,
    after the traffic the tests above sent and a deploy's record (the release exporter's). A panel none of whose
    queries returns a series is named."""
    dashboard = json.loads((ROOT / "templates" / "grafana" / "dashboards" / "mnist.json").read_text())
    markers = {"title": "deploy markers", "targets": dashboard["annotations"]["list"]}
    deadline = time.monotonic() + 60  # recording rules' groups evaluate on their own clocks: give each a few turns
    while True:
        empty = []
        for panel in [*dashboard["panels"], markers]:
            answers = [
                httpx.get(f"{prometheus}/api/v1/query", params={"query": target["expr"]}, timeout=5).json()
                for target in panel["targets"]
            ]
            assert all(answer["status"] == "success" for answer in answers), (panel["title"], answers)
            if not any(answer["data"]["result"] for answer in answers):
                empty.append(panel["title"])
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert empty == [], f"panels with no data: {empty}"
