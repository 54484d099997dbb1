from pathlib import Path

import numpy as np
import pytest

from app.mnist import store
from app.mnist.data import load_mnist

ROOT = Path(__file__).resolve().parents[2]
TARGET = 0.992


def test_committed_model_verifies_and_records_the_target_accuracy(default_model):
    assert default_model.version == store.current_version(ROOT / "models")
    assert default_model.metadata["test_accuracy"] >= TARGET
    assert default_model.metadata["parity"]["max_abs_diff"] < 1e-4
    assert default_model.metadata["dataset"]["test"] == 10000


def test_committed_model_classifies_the_fixture(mnist_sample, onnx_session):
    images, labels = mnist_sample
    logits = onnx_session.run(None, {"image": (images[:, None] / 255.0).astype(np.float32)})[0]
    assert float((logits.argmax(axis=1) == labels).mean()) >= 0.98


@pytest.mark.slow
def test_committed_model_meets_the_target_on_the_full_test_set(default_model, onnx_session):
    mnist = load_mnist(ROOT / "data")
    logits = onnx_session.run(None, {"image": (mnist.x_test[:, None] / 255.0).astype(np.float32)})[0]
    accuracy = float((logits.argmax(axis=1) == mnist.y_test).mean())
    assert accuracy >= TARGET
    assert accuracy == pytest.approx(default_model.metadata["test_accuracy"], abs=1e-4)
