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
INFERENCE_BATCH_SIZE = Histogram(
    "mnist_inference_batch_size",
    "Images in one model run: concurrent requests to /api/v1/predict share runs",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
# How sure the model is of each answer (its top class probability), by model version: the dashboard's confidence
# distribution, and the share below 0.9 (mnist:prediction_low_confidence:ratio_rate1h).
CONFIDENCE = Histogram(
    "mnist_prediction_confidence",
    "Top class probability of each prediction, by model version",
    ["version"],
    buckets=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999),
)
NOT_SURE = Counter(
    "mnist_predictions_not_sure_total",
    'Predictions answered "not sure" (below the model\'s calibrated threshold), by model version',
    ["version"],
)
# The feedback loop: predictions a user may correct (made through /api/v1/predict/image with a database configured)
# and the corrections sent, by the right digit and by the model version that erred. Their ratio is the share of
# predictions corrected (mnist:prediction_corrected:ratio_rate1h).
CORRECTABLE = Counter(
    "mnist_feedback_predictions_total", "Predictions kept for a correction, by model version", ["version"]
)
CORRECTIONS = Counter(
    "mnist_feedback_corrections_total",
    "Corrections users sent, by the right digit and the model version that answered",
    ["digit", "version"],
)
MODEL_INFO = Gauge("mnist_model_info", "The model this process serves (value 1)", ["version"], multiprocess_mode="max")

# The container's own resource use and limits, from cgroup v2 or v1, for the CPU/RAM < 80 % targets. Every worker
# reads the same cgroup, so "max" across processes is the value.
CGROUP = Path("/sys/fs/cgroup")
MEMORY_USAGE = Gauge("mnist_container_memory_usage_bytes", "Memory used by the container", multiprocess_mode="max")
MEMORY_LIMIT = Gauge("mnist_container_memory_limit_bytes", "Memory limit of the container", multiprocess_mode="max")
CPU_SECONDS = Gauge(
    "mnist_container_cpu_seconds", "CPU time used by the container (a counter)", multiprocess_mode="max"
)
CPU_LIMIT = Gauge("mnist_container_cpu_limit_cores", "CPU limit of the container in cores", multiprocess_mode="max")


def read_cgroup(cgroup: Path = CGROUP) -> tuple[float, float, float, float] | None:
    """(memory used, memory limit, CPU seconds used, CPU limit in cores) from cgroup v2 or v1, else None."""
    unlimited_cores = float(os.cpu_count() or 1)
    try:
        if (cgroup / "memory.current").is_file():
            limit = (cgroup / "memory.max").read_text().strip()
            stat = dict(line.split() for line in (cgroup / "cpu.stat").read_text().splitlines())
            quota, period = (cgroup / "cpu.max").read_text().split()
            return (
                float((cgroup / "memory.current").read_text()),
                float("inf") if limit == "max" else float(limit),
                int(stat["usage_usec"]) / 1e6,
                unlimited_cores if quota == "max" else int(quota) / int(period),
            )
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        return (
            float((cgroup / "memory" / "memory.usage_in_bytes").read_text()),
            float((cgroup / "memory" / "memory.limit_in_bytes").read_text()),
            int((cgroup / "cpuacct" / "cpuacct.usage").read_text()) / 1e9,
            unlimited_cores if quota_us < 0 else quota_us / int((cgroup / "cpu" / "cpu.cfs_period_us").read_text()),
        )
    except (OSError, ValueError, KeyError):
        return None


def update_container_metrics(cgroup: Path = CGROUP) -> bool:
    """Refresh the container gauges; False when there is no cgroup to read (not in a container)."""
    reading = read_cgroup(cgroup)
    if reading is None:
        return False
    for gauge, value in zip((MEMORY_USAGE, MEMORY_LIMIT, CPU_SECONDS, CPU_LIMIT), reading, strict=True):
        gauge.set(value)
    return True
