"""What the Prometheus rules restate from elsewhere, checked against its source: the model-health rules' training
distribution is MNIST's training labels'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from app.mnist.data import load_mnist

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "templates" / "prometheus" / "rules.yml"


def test_the_training_shares_are_mnists_training_labels():
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    stated = {
        int(rule["labels"]["digit"]): float(rule["expr"].removeprefix("vector(").removesuffix(")"))
        for rule in rules
        if rule.get("record") == "mnist:training_digit:share"
    }
    labels = load_mnist(ROOT / "data").y_train
    shares = np.bincount(labels, minlength=10) / len(labels)
    assert sorted(stated) == list(range(10))
    assert np.allclose([stated[digit] for digit in range(10)], shares, atol=5e-7), (stated, shares.tolist())
