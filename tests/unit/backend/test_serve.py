"""The real server: `python -m app.backend`, over real sockets."""

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, backend, free_port, running


@pytest.mark.slow
def test_metrics_count_every_request_across_worker_processes(tmp_path, mnist_sample):
    images, _ = mnist_sample
    body = json.dumps({"image": (images[0] / 255.0).ravel().tolist()})
    with backend(tmp_path, workers=2) as base, httpx.Client(base_url=base) as client:
        statuses = set()
        for _ in range(60):
            # a new connection each time, so both workers get requests
            answer = client.post(
                "/api/v1/predict", content=body, headers={"content-type": "application/json", "connection": "close"}
            )
            statuses.add(answer.status_code)
        text = client.get("/metrics").text
    assert statuses == {200}
    predictions = sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("mnist_predictions_total{")
    )
    assert predictions == 60
    assert 'http_requests_total{handler="/api/v1/predict",method="POST",status="2xx"} 60.0' in text
    assert text.count("mnist_model_info{") == 1


@pytest.mark.slow
def test_both_workers_take_connections(tmp_path):
    """Each worker listens on its own socket; the first 16 hex digits of a generated request id name the process."""
    body = json.dumps({"image": [0.0] * 784})
    with backend(tmp_path, workers=2) as base, contextlib.ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(base_url=base)) for _ in range(16)]  # 16 open connections
        answers = [client.post("/api/v1/predict", content=body) for client in clients]
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.headers["x-request-id"][:16] for answer in answers}) == 2


@pytest.mark.slow
def test_schemathesis_with_every_check_finds_no_failure(tmp_path):
    """At least 1000 generated requests against the live OpenAPI schema, every check on: no 5xx, no response
    outside the schema, valid data accepted and invalid data refused, as the schema states them."""
    with backend(tmp_path, workers=2) as base:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(Path(__file__).with_name("schemathesis.toml")),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "500",
                "--seed",
                "1",
                "--generation-database",
                "none",
                "--report",
                "junit",
                "--report-junit-path",
                str(tmp_path / "junit.xml"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=tmp_path,
        )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    generated = sum(int(n) for n in re.findall(r"(\d+) generated", output))
    assert generated >= 1000, output[-2000:]


@pytest.mark.slow
def test_each_worker_does_its_linear_algebra_on_one_thread(tmp_path, monkeypatch):
    """numpy's and scipy's OpenBLAS in every worker process `python -m app.backend` starts: one thread, not one per
    core (threads spinning against the other workers' and replicas'); an operator's own value stays."""
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    answers = set()
    for value in (None, "2"):
        port = free_port()
        command = [sys.executable, "-m", "app.backend", "--app", "tests.unit.backend.blas_probe:app"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
        env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}")}
        env |= {"OPENBLAS_NUM_THREADS": value} if value else {}
        with running(command, f"http://127.0.0.1:{port}/", env, ROOT):
            seen = {
                json.dumps(httpx.get(f"http://127.0.0.1:{port}/", headers={"connection": "close"}).json())
                for _ in range(20)
            }
        answers.add((value, tuple(sorted(seen))))
    assert answers == {(None, ('{"numpy": 1, "scipy": 1}',)), ("2", ('{"numpy": 2, "scipy": 2}',))}
