"""The served model: loaded once, verified against its version, run with ONNX Runtime."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from app.backend import metrics
from app.mnist import contract, store

ort.disable_telemetry_events()  # nothing leaves the process; the read-only root has no place for a device id


@dataclass(frozen=True)
class Prediction:
    digit: int
    probabilities: list[float]


class Classifier:
    def __init__(self, model: store.StoredModel, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.version = model.version
        self.metadata: dict[str, Any] = model.metadata
        self._session = ort.InferenceSession(model.onnx_bytes, options, providers=["CPUExecutionProvider"])

    def predict(self, images: np.ndarray) -> list[Prediction]:
        """IMAGES: float32 (N, 28, 28) in [0, 1], already following the input contract."""
        started = time.perf_counter()
        logits = self._session.run(None, {contract.INPUT_NAME: images.reshape(-1, 1, 28, 28)})[0]
        metrics.INFERENCE_SECONDS.observe(time.perf_counter() - started)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        digits = probabilities.argmax(axis=1)
        for digit in digits.tolist():
            metrics.PREDICTIONS_BY_DIGIT[digit].inc()
        return [
            Prediction(d, [round(p, 6) for p in row])
            for d, row in zip(digits.tolist(), probabilities.tolist(), strict=True)
        ]


def load_classifier(model_dir: Any, version: str | None, threads: int) -> Classifier:
    """Load and verify a model; raises store.ModelStoreError if its bytes are not its version."""
    classifier = Classifier(store.load(model_dir, version), threads)
    metrics.MODEL_INFO.labels(version=classifier.version).set(1)
    return classifier
