"""The deploy gate's digits and what a release's model must score on them.

The gate (roles/mnist_stack/files/gate.py, run in every new replica before it takes traffic) sends two sets: raw
MNIST digits to the batch endpoint, and digits drawn as users draw them — PNG files through /api/v1/predict/image,
the preprocessing included — so an image whose preprocessing is broken cannot pass on raw digits alone. Both come
from the test fixture (tests/fixtures/mnist_test_500.npz), never from training data, and are written once into
roles/mnist_stack/files/gate_digits.json by `python -m mnist_deploy.gate` (a unit test checks the file is what this
module makes).

What a replica must score is the model's own record, not a fixed share: its test accuracy for the raw digits and
its robustness suite on the drawn digits' conditions (the model's metadata), lowered by what chance allows on so
few digits (module_utils/releases.gate_threshold). The release carries those thresholds (and so does each host's
record of it, for rollbacks); the role's mnist_stack_gate_min_accuracy stays the floor for raw digits, and a model
recorded without a suite has its drawn digits reported, not judged.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from mnist_deploy.collection import releases

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "mnist_test_500.npz"
DIGITS_FILE = ROOT / "roles" / "mnist_stack" / "files" / "gate_digits.json"
RAW_PER_CLASS = 10
# The canvas's own conditions (app/mnist/robustness.py): what the UI sends, a digit of each class in each.
DRAWN_CONDITIONS = ("canvas", "pen_0.25", "small_corner", "rotated_25")
SEED = 1
TEST_SET_SIZE = 10_000  # the test accuracy in a model's metadata is over MNIST's whole test set


def _first_of_each_class(labels: Any, per_class: int, skip: set[int]) -> list[int]:
    counts: dict[int, int] = {}
    chosen = []
    for i, label in enumerate(labels.tolist()):
        if i not in skip and counts.get(label, 0) < per_class:
            counts[label] = counts.get(label, 0) + 1
            chosen.append(i)
    return chosen


def build() -> dict[str, Any]:
    """The gate's digits: RAW_PER_CLASS raw digits of each class (the first ones of the fixture), and for each
    drawn condition one digit of each class rendered as that condition's PNG (the next ones, a new digit each)."""
    import numpy as np

    from app.mnist import robustness

    fixture = np.load(FIXTURE)
    images, labels = fixture["images"], fixture["labels"]
    raw = _first_of_each_class(labels, RAW_PER_CLASS, set())
    used = set(raw)
    drawn = []
    for condition in DRAWN_CONDITIONS:
        chosen = _first_of_each_class(labels, 1, used)
        used.update(chosen)
        pictures = robustness.render(robustness.BY_NAME[condition], images[chosen], seed=SEED)
        drawn += [
            {"condition": condition, "label": int(labels[i]), "png_base64": base64.b64encode(png).decode()}
            for i, png in zip(chosen, pictures, strict=True)
        ]
    return {
        "source": (
            f"MNIST test set (t10k), {RAW_PER_CLASS} digits of each class, the first of each class in "
            f"tests/fixtures/mnist_test_500.npz; drawn: the next digit of each class in each of "
            f"{', '.join(DRAWN_CONDITIONS)} (app/mnist/robustness.py, seed {SEED}), as PNG"
        ),
        "shape": [len(raw), 28, 28],
        "pixels_base64": base64.b64encode(images[raw].tobytes()).decode(),
        "labels": [int(labels[i]) for i in raw],
        "drawn": drawn,
    }


def text(digits: dict[str, Any]) -> str:
    return json.dumps(digits, indent=1) + "\n"


def thresholds(metadata: dict[str, Any], digits: dict[str, Any]) -> dict[str, float]:
    """What each replica of the model METADATA describes must score on the gate's DIGITS: {'raw': …, 'drawn': …}
    ('drawn' only when the metadata holds a robustness suite covering the drawn digits' conditions)."""
    raw = releases.gate_threshold(float(metadata.get("test_accuracy") or 0.0), len(digits["labels"]), TEST_SET_SIZE)
    result = {"raw": raw}
    suite = metadata.get("robustness") or {}
    drawn_in = [entry["condition"] for entry in digits.get("drawn", [])]  # each drawn digit's condition
    scored = suite.get("conditions") or {}
    if drawn_in and all(name in scored for name in drawn_in):
        expected = sum(scored[name]["accuracy"] for name in drawn_in) / len(drawn_in)
        reference = int(suite.get("digits") or 0) * len(set(drawn_in))  # the suite's digits on those conditions
        result["drawn"] = releases.gate_threshold(expected, len(drawn_in), reference)
    return result


def for_model(model_dir: Path, version: str) -> dict[str, float]:
    """thresholds() for the model VERSION of the store MODEL_DIR and the committed gate digits."""
    from app.mnist import store

    return thresholds(store.load(model_dir, version).metadata, json.loads(DIGITS_FILE.read_text()))


if __name__ == "__main__":
    DIGITS_FILE.write_text(text(build()))
    print(f"wrote {DIGITS_FILE.relative_to(ROOT)}")
