"""Outlier exposure (app/training/nodes.py:train with app/training/augment.py:scribbles): trained beside scribbles
whose target is every digit equally likely, the model stops answering a scribble with confidence."""

from __future__ import annotations

import numpy as np
import torch

from app.training import nodes
from app.training.augment import scribbles
from app.training.pipeline import load_parameters


def test_a_model_trained_with_scribbles_is_unsure_of_new_ones_and_still_reads_digits(mnist_sample):
    images, labels = mnist_sample
    dataset = {
        "x_train": torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1),
        "y_train": torch.from_numpy(labels.astype(np.int64)),
    }
    params = load_parameters()["training"]
    unseen = scribbles(200, params["outliers"], torch.Generator().manual_seed(99))
    confidence, accuracy = {}, {}
    for name, weight in (("with", 0.5), ("without", 0.0)):
        training = {
            **params,
            "epochs": 5,
            "batch_size": 32,
            "learning_rate": 0.01,
            "validation": 100,
            "channels": [8, 16],
            "hidden": 32,
            "convs": 1,
            "device": "cpu",
            "augment": {**params["augment"], "untouched_share": 1.0},
            "outliers": {**params["outliers"], "weight": weight, "share": 0.25},
        }
        feedback = nodes.load_feedback({"file": None})
        trained = nodes.train(dataset, training, feedback)
        model = trained["model"]
        probabilities = torch.softmax(nodes._predict(model, unseen, torch.device("cpu")), 1)
        confidence[name] = float(probabilities.max(1).values.mean())
        held = trained["validation"]
        accuracy[name] = float(
            (nodes._predict(model, held["clean"], torch.device("cpu")).argmax(1) == held["labels"]).float().mean()
        )
    assert confidence["with"] < confidence["without"] - 0.2, confidence
    assert accuracy["with"] >= accuracy["without"] - 0.05, accuracy
