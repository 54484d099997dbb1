"""The deploy gate's digits (mnist_deploy/gate.py): the committed file is what the module makes, its drawn digits
go through the real preprocessing, and what a replica must score comes from its model's record."""

import base64
import json

import numpy as np
import pytest

from app.mnist import store
from app.mnist.preprocessing import decode_image, preprocess
from app.mnist.robustness import MAX_PIXELS
from mnist_deploy import gate

ROOT = gate.ROOT


def test_the_committed_gate_digits_are_what_the_module_makes():
    assert gate.DIGITS_FILE.read_text() == gate.text(gate.build()), "run `python -m mnist_deploy.gate`"


def test_the_gate_draws_every_class_in_every_condition_from_digits_it_sends_raw_nowhere_else():
    digits = json.loads(gate.DIGITS_FILE.read_text())
    assert sorted(digits["labels"]) == sorted(list(range(10)) * gate.RAW_PER_CLASS)
    by_condition: dict[str, list[int]] = {}
    for entry in digits["drawn"]:
        by_condition.setdefault(entry["condition"], []).append(entry["label"])
    assert list(by_condition) == list(gate.DRAWN_CONDITIONS)
    assert all(sorted(labels) == list(range(10)) for labels in by_condition.values())
    # Each drawn digit is a PNG the preprocessing reads as a digit (what /api/v1/predict/image does first).
    for entry in digits["drawn"]:
        picture = decode_image(base64.b64decode(entry["png_base64"]), MAX_PIXELS)
        assert preprocess(picture).shape == (28, 28)


def test_a_release_expects_of_its_replicas_what_its_models_record_says():
    version = store.current_version(ROOT / "models")
    metadata = store.load(ROOT / "models", version).metadata
    digits = json.loads(gate.DIGITS_FILE.read_text())
    expected = gate.thresholds(metadata, digits)
    suite = metadata["robustness"]["conditions"]
    drawn_mean = np.mean([suite[name]["accuracy"] for name in gate.DRAWN_CONDITIONS])
    assert metadata["test_accuracy"] - 0.03 < expected["raw"] < metadata["test_accuracy"]
    assert drawn_mean - 0.06 < expected["drawn"] < drawn_mean
    assert gate.for_model(ROOT / "models", version) == expected


@pytest.mark.parametrize(
    "robustness",
    [None, {"digits": 50, "conditions": {"canvas": {"accuracy": 0.99}}}],  # no suite; one missing a condition
)
def test_a_model_recorded_without_a_suite_on_the_drawn_conditions_has_its_drawn_digits_unjudged(robustness):
    metadata = {"test_accuracy": 0.99, **({"robustness": robustness} if robustness else {})}
    assert set(gate.thresholds(metadata, json.loads(gate.DIGITS_FILE.read_text()))) == {"raw"}
