"""The stack's endpoints through its published ports (or any stack given with --backend-url)."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def wait_for(url: str, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=timeout)
            if response.status_code == 200 or time.monotonic() > deadline:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def test_backend_is_ready_and_serves_a_verified_model(stack):
    ready = wait_for(f"{stack.backend}/ready", stack.timeout)
    assert ready.status_code == 200
    model = httpx.get(f"{stack.backend}/api/v1/model", timeout=stack.timeout).json()
    assert model["version"] == ready.json()["model_version"]
    assert model["test_accuracy"] >= 0.992


def test_backend_predicts_real_test_digits(stack, mnist_sample):
    images, labels = mnist_sample
    body = {"images": [(d / 255.0).ravel().tolist() for d in images[:50]]}
    answer = httpx.post(f"{stack.backend}/api/v1/predict/batch", json=body, timeout=stack.timeout)
    assert answer.status_code == 200
    predicted = [p["digit"] for p in answer.json()["predictions"]]
    assert sum(p == t for p, t in zip(predicted, labels[:50], strict=True)) >= 49
    single = httpx.post(f"{stack.backend}/api/v1/predict", json={"image": body["images"][0]}, timeout=stack.timeout)
    assert single.json()["digit"] == labels[0]


def test_backend_refuses_bad_input_with_a_reason(stack):
    answer = httpx.post(f"{stack.backend}/api/v1/predict", json={"image": [2.0] * 784}, timeout=stack.timeout)
    assert answer.status_code == 422
    assert answer.json()["detail"]


def test_backend_exposes_http_and_model_metrics(stack):
    text = httpx.get(f"{stack.backend}/metrics", timeout=stack.timeout).text
    assert "http_requests_total" in text
    assert "mnist_model_info{" in text
    assert "mnist_container_memory_limit_bytes" in text


def test_frontend_page_answers(stack):
    if not stack.frontend:
        pytest.skip("no --frontend-url given")
    assert wait_for(f"{stack.frontend}/_stcore/health", stack.timeout).text == "ok"
    page = httpx.get(stack.frontend, timeout=stack.timeout)
    assert page.status_code == 200 and "<title>" in page.text
