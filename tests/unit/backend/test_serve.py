"""The real server: `python -m app.backend` with several worker processes."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def two_workers(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MNIST_MODEL_DIR": str(ROOT / "models"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "MNIST_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.backend", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("backend did not become ready in 30 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.slow
def test_metrics_count_every_request_across_worker_processes(two_workers, mnist_sample):
    images, _ = mnist_sample
    body = json.dumps({"image": (images[0] / 255.0).ravel().tolist()})
    statuses = set()
    with httpx.Client(base_url=two_workers, headers={"content-type": "application/json"}) as client:
        for _ in range(60):
            # a new connection each time, so both workers get requests
            statuses.add(client.post("/api/v1/predict", content=body, headers={"connection": "close"}).status_code)
        text = client.get("/metrics").text
    assert statuses == {200}
    predictions = sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("mnist_predictions_total{")
    )
    assert predictions == 60
    assert 'http_requests_total{handler="/api/v1/predict",method="POST",status="2xx"} 60.0' in text
    assert text.count("mnist_model_info{") == 1
