"""Model metrics. With PROMETHEUS_MULTIPROC_DIR set, every worker process writes there and /metrics sums them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREDICTIONS = Counter("mnist_predictions_total", "Predictions served, by predicted digit", ["digit"])
INFERENCE_SECONDS = Histogram(
    "mnist_inference_seconds",
    "Time spent in the model for one request (one image or one batch)",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
MODEL_INFO = Gauge("mnist_model_info", "The model this process serves (value 1)", ["version"], multiprocess_mode="max")
