"""Model metrics. With PROMETHEUS_MULTIPROC_DIR set, every worker process writes there and /metrics sums them."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram
from prometheus_fastapi_instrumentator import metrics

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)
# Created once per process: a second registration of the same series would be refused.
HTTP_INSTRUMENTATIONS = (
    metrics.requests(),
    metrics.latency(buckets=LATENCY_BUCKETS, should_include_status=False),
)

PREDICTIONS = Counter("mnist_predictions_total", "Predictions served, by predicted digit", ["digit"])
PREDICTIONS_BY_DIGIT = [PREDICTIONS.labels(digit=str(digit)) for digit in range(10)]  # bound once, not per request
INFERENCE_SECONDS = Histogram(
    "mnist_inference_seconds",
    "Time spent in the model for one request (one image or one batch)",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
MODEL_INFO = Gauge("mnist_model_info", "The model this process serves (value 1)", ["version"], multiprocess_mode="max")

# The container's own resource use and limits, from cgroup v2, for the CPU/RAM < 80 % targets. Every worker
# reads the same cgroup, so "max" across processes is the value.
CGROUP = Path("/sys/fs/cgroup")
MEMORY_USAGE = Gauge("mnist_container_memory_usage_bytes", "Memory used by the container", multiprocess_mode="max")
MEMORY_LIMIT = Gauge("mnist_container_memory_limit_bytes", "Memory limit of the container", multiprocess_mode="max")
CPU_SECONDS = Gauge(
    "mnist_container_cpu_seconds", "CPU time used by the container (a counter)", multiprocess_mode="max"
)
CPU_LIMIT = Gauge("mnist_container_cpu_limit_cores", "CPU limit of the container in cores", multiprocess_mode="max")


def update_container_metrics(cgroup: Path = CGROUP) -> bool:
    """Refresh the container gauges; False when there is no cgroup v2 to read (not in a container)."""
    try:
        usage = int((cgroup / "memory.current").read_text())
        limit_text = (cgroup / "memory.max").read_text().strip()
        cpu_stat = dict(line.split() for line in (cgroup / "cpu.stat").read_text().splitlines())
        quota, period = (cgroup / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return False
    MEMORY_USAGE.set(usage)
    MEMORY_LIMIT.set(float("inf") if limit_text == "max" else int(limit_text))
    CPU_SECONDS.set(int(cpu_stat["usage_usec"]) / 1e6)
    CPU_LIMIT.set(float(os.cpu_count() or 1) if quota == "max" else int(quota) / int(period))
    return True
