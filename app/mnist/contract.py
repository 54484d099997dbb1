"""The model's input contract, shared by training, export and serving.

The model takes float32 tensors of shape (N, 1, 28, 28) with values in [0, 1], white ink on a black
background, the digit fitted into a 20x20 box and centred by centre of mass — exactly as MNIST itself is.
Normalisation by the training set's mean and standard deviation happens inside the model graph, so no
caller can get it wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np

IMAGE_SIZE = 28
DIGIT_BOX = 20
NUM_CLASSES = 10
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
ONNX_OPSET = 17


def probabilities(logits: np.ndarray) -> np.ndarray:
    """The model's (N, 10) logits as probabilities (a softmax; the exported graph is already calibrated)."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def not_sure_below(metadata: dict[str, Any]) -> float:
    """The confidence below which a model's answer is "not sure" (its calibration's; 0: always sure, for a model
    trained before calibration)."""
    return float((metadata.get("calibration") or {}).get("not_sure_below", 0.0))


def describe() -> dict[str, object]:
    """The contract as recorded in a model's metadata and reported by the backend."""
    return {
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "shape": [None, 1, IMAGE_SIZE, IMAGE_SIZE],
        "dtype": "float32",
        "range": [0.0, 1.0],
        "polarity": "white ink on black background",
        "digit_box": DIGIT_BOX,
        "centering": "centre of mass",
        "normalisation": {"mean": MNIST_MEAN, "std": MNIST_STD, "applied": "inside the model"},
        "output": f"{NUM_CLASSES} logits",
    }
