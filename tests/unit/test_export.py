import numpy as np
import onnx
import pytest
import torch

from app.training import nodes
from app.training.model import DigitNet

EXPORT_PARAMS = {"opset": 17, "parity_images": 100, "parity_tolerance": 1e-4}


@pytest.fixture
def small_run(mnist_sample):
    torch.manual_seed(0)
    model = DigitNet((4, 8), 16, 0.0).eval()
    images, labels = mnist_sample
    dataset = {
        "x_test": torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1),
        "y_test": torch.from_numpy(labels.astype(np.int64)),
        "checksums": {"t10k-images-idx3-ubyte": "x"},
    }
    trained = {
        "model": model,
        "history": [{"epoch": 1, "loss": 1.0, "test_accuracy": 0.1}],
        "seconds": 1.0,
        "device": "cpu",
    }
    return trained, dataset, nodes.evaluate(trained, dataset, nodes.load_feedback({"file": None}))


def test_export_matches_torch_and_records_its_identity(small_run):
    trained, dataset, metrics = small_run
    exported = nodes.export(trained, dataset, metrics, EXPORT_PARAMS, {"epochs": 1})
    metadata = exported["metadata"]
    assert metadata["version"] == nodes.store.sha256(exported["onnx"])
    assert metadata["parity"]["max_abs_diff"] < 1e-4
    assert metadata["opset"] == 17
    assert metadata["input_contract"]["shape"] == [None, 1, 28, 28]
    assert onnx.load_from_string(exported["onnx"]).opset_import[0].version == 17


def test_export_fails_when_parity_does_not_hold(small_run):
    trained, dataset, metrics = small_run
    with pytest.raises(nodes.ExportError, match="differ by"):
        nodes.export(trained, dataset, metrics, {**EXPORT_PARAMS, "parity_tolerance": 0.0}, {})


def test_parity_check_sees_a_different_model(small_run):
    trained, dataset, metrics = small_run
    exported = nodes.export(trained, dataset, metrics, EXPORT_PARAMS, {})
    other = DigitNet((4, 8), 16, 0.0).eval()
    assert nodes.parity_difference(other, exported["onnx"], dataset["x_test"][:50]) > 1e-3


def test_evaluate_counts_the_confusion_matrix(small_run):
    _, dataset, metrics = small_run
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.sum() == len(dataset["y_test"])
    assert metrics["test_accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
