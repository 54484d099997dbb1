"""The deploy gate's digits (mnist_deploy/gate.py): the committed file is what the module makes, its drawn digits
go through the real preprocessing, and what a replica must score comes from its model's record."""

import base64
import json
import subprocess
import sys

import numpy as np
import pytest

from app.mnist import store
from app.mnist.preprocessing import decode_image, preprocess
from app.mnist.robustness import MAX_PIXELS
from mnist_deploy import gate
from mnist_deploy.collection import releases
from tests.servers import backend, free_port

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


@pytest.mark.slow
def test_the_gate_script_asks_every_replica_at_once_and_judges_each_by_the_models_record(tmp_path):
    """roles/mnist_stack/files/gate.py as the role runs it (python3 -c, digits on stdin, replicas as arguments)
    against two real backends serving the committed model, and an address where nothing listens."""
    script = (ROOT / "roles" / "mnist_stack" / "files" / "gate.py").read_text()
    version = store.current_version(ROOT / "models")
    nowhere = f"127.0.0.1:{free_port()}"
    with backend(tmp_path) as first, backend(tmp_path) as second:
        replicas = [first.removeprefix("http://"), second.removeprefix("http://"), nowhere]
        run = subprocess.run(
            [sys.executable, "-c", script, *replicas],
            input=gate.DIGITS_FILE.read_text(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    answers = json.loads(run.stdout)
    assert [answer["replica"] for answer in answers] == replicas
    served, missing = answers[:2], answers[2]
    assert all(a["ready"] and a["version"] == version and "error" not in a for a in served)
    expected = gate.for_model(ROOT / "models", version)
    verdict = releases.gate_verdict(served, 2, 2, version, expected, 0.9)
    assert verdict == "", verdict
    assert missing["ready"] is False and missing["error"].startswith("URLError")
    assert "1 not ready" in releases.gate_verdict(answers, 3, 3, version, expected, 0.9)
