"""Model metrics. With PROMETHEUS_MULTIPROC_DIR set, every worker process writes there and /metrics sums them."""

from __future__ import annotations

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
