"""`invoke train --with-feedback`: users' corrections join training, a held-out part measures the new model on them,
and the metadata says how many were used."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import torch

from app.mnist import corrections as documents
from app.training import nodes
from app.training.pipeline import load_parameters

WHEN = datetime(2026, 12, 6, tzinfo=UTC)


def backup(tmp_path, images: np.ndarray, right: list[int]):
    items = [
        documents.Correction(f"{i:032x}", WHEN, (digit + 1) % 10, digit, "v1", image.astype(np.uint8).tobytes())
        for i, (image, digit) in enumerate(zip(images, right, strict=True))
    ]
    path = tmp_path / "feedback.json"
    path.write_text(documents.Corrections(items).dumps())
    return path


def test_corrections_split_into_training_and_held_out_the_same_way_every_time(tmp_path, mnist_sample):
    images, labels = mnist_sample
    path = backup(tmp_path, images[:50], labels[:50].tolist())
    params = {**load_parameters()["feedback"], "file": str(path)}
    first, again = nodes.load_feedback(params), nodes.load_feedback(params)
    assert len(first["y_held"]) == 10 and first["used"] == 40
    assert len(first["y_train"]) == 40 * params["repeat"]  # each seen REPEAT times an epoch
    assert torch.equal(first["y_held"], again["y_held"]) and torch.equal(first["x_held"], again["x_held"])
    assert first["x_train"].shape[1:] == (1, 28, 28) and float(first["x_train"].max()) <= 1.0
    assert first["source"]["corrections"] == 50 and len(first["source"]["sha256"]) == 64


def test_without_a_file_training_is_mnist_alone():
    nothing = nodes.load_feedback(load_parameters()["feedback"])
    assert nothing["source"] is None and len(nothing["x_train"]) == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file"), ("{}", "not a mnist-feedback-backup/1 document"), ("[", "not a corrections document")],
)
def test_a_file_that_is_not_a_backup_is_refused_naming_it(tmp_path, content, reason):
    path = tmp_path / "feedback.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(documents.CorrectionsError, match=reason):
        nodes.load_feedback({**load_parameters()["feedback"], "file": str(path)})


def test_the_model_learns_from_corrections_and_is_measured_on_the_held_out_ones(tmp_path, mnist_sample):
    """A pattern MNIST never shows (a hollow square) corrected to "4" 60 times: a short training run with the
    corrections reads the held-out squares as 4; the same run without them does not."""
    images, labels = mnist_sample
    rng = np.random.default_rng(0)
    squares = np.zeros((60, 28, 28), np.uint8)
    for square in squares:
        a, b = rng.integers(4, 8), rng.integers(20, 24)
        square[a:b, a : a + 3] = square[a:b, b - 3 : b] = square[a : a + 3, a:b] = square[b - 3 : b, a:b] = 255
    path = backup(tmp_path, squares, [4] * 60)
    dataset = {
        "x_train": torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1),
        "y_train": torch.from_numpy(labels.astype(np.int64)),
        "x_test": torch.from_numpy(images[:100].astype(np.float32) / 255).unsqueeze(1),
        "y_test": torch.from_numpy(labels[:100].astype(np.int64)),
    }
    training = {
        **load_parameters()["training"],
        "epochs": 2,
        "validation": 50,
        "channels": [4, 8],
        "hidden": 16,
        "convs": 1,
        "device": "cpu",
        "augment": {**load_parameters()["training"]["augment"], "untouched_share": 1.0},
    }
    accuracy = {}
    for name, feedback_file in (("with", str(path)), ("without", None)):
        feedback = nodes.load_feedback({**load_parameters()["feedback"], "file": feedback_file})
        trained = nodes.train(dataset, training, feedback)
        metrics = nodes.evaluate(trained, dataset, feedback)
        held = nodes.load_feedback({**load_parameters()["feedback"], "file": str(path)})
        accuracy[name] = float(
            (nodes._predict(trained["model"], held["x_held"], torch.device("cpu")).argmax(1) == 4).float().mean()
        )
        if name == "with":
            recorded = metrics["feedback"]
            assert recorded["corrections"] == 60 and recorded["used_for_training"] == 48 and recorded["held_out"] == 12
            assert recorded["held_out_accuracy"] == accuracy["with"]
        else:
            assert metrics["feedback"] is None
    assert accuracy["with"] >= 0.9 and accuracy["without"] <= 0.5, accuracy
