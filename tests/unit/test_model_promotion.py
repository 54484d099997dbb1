"""Registering a model never moves `current`; `promote` does, when the model beats the current one
(app/mnist/promotion.py)."""

import json

import pytest

from app.mnist import promotion, store
from app.mnist.promotion import PromotionError


def report(accuracies: dict[str, float], digits: int = 500, seed: int = 1, preprocessing: int = 2) -> dict:
    return {
        "digits": digits,
        "seed": seed,
        "preprocessing_version": preprocessing,
        "conditions": {name: {"accuracy": a, "refused": 0.0, "target": 0.97} for name, a in accuracies.items()},
    }


def add(root, name: bytes, test: float, suite: dict | None) -> str:
    metadata = {"version": store.sha256(name), "test_accuracy": test}
    if suite is not None:
        metadata["robustness"] = suite
    return store.register(root, name, metadata)


def never_scored(model):
    raise AssertionError(f"{model.version[:12]} has a comparable report; the suite should not run again")


@pytest.fixture
def current(tmp_path):
    version = add(tmp_path, b"current", 0.9936, report({"canvas": 0.99, "blur": 0.50, "pen_0.45": 0.60}))
    store.set_current(tmp_path, version)
    return version


def test_registering_does_not_move_current(tmp_path, current):
    add(tmp_path, b"better", 0.995, report({"canvas": 0.99, "blur": 0.95, "pen_0.45": 0.97}))
    assert store.current_version(tmp_path) == current


def test_a_model_that_beats_the_current_one_is_promoted_and_recorded(tmp_path, current):
    better = add(tmp_path, b"better", 0.9940, report({"canvas": 0.99, "blur": 0.95, "pen_0.45": 0.97}))
    comparison = promotion.promote(tmp_path, better, never_scored, now="2026-12-04T13:00:00+00:00")
    assert comparison is not None and comparison.beats
    assert store.current_version(tmp_path) == better
    [entry] = [json.loads(line) for line in (tmp_path / promotion.RECORD).read_text().splitlines()]
    assert entry["version"] == better and entry["replaced"] == current and entry["reason"] is None
    assert entry["comparison"]["suite_mean"] == {"candidate": 0.97, "current": 0.6967}


@pytest.mark.parametrize(
    ("test", "suite", "why"),
    [
        (0.9936, {"canvas": 0.99, "blur": 0.50, "pen_0.45": 0.60}, "suite mean 69.67% is not above"),
        (0.9900, {"canvas": 0.99, "blur": 0.95, "pen_0.45": 0.97}, "clean test accuracy 99.00% is below"),
        (0.9936, {"canvas": 0.95, "blur": 0.95, "pen_0.45": 0.97}, "canvas drops from 99.0% to 95.0%"),
    ],
)
def test_a_model_that_does_not_beat_it_is_refused_and_current_stays(tmp_path, current, test, suite, why):
    worse = add(tmp_path, b"worse", test, report(suite))
    with pytest.raises(PromotionError, match=why) as refused:
        promotion.promote(tmp_path, worse, never_scored)
    assert "--reason" in str(refused.value)
    assert store.current_version(tmp_path) == current
    assert not (tmp_path / promotion.RECORD).exists()


def test_a_reason_promotes_anyway_and_is_kept(tmp_path, current):
    worse = add(tmp_path, b"worse", 0.99, report({"canvas": 0.99, "blur": 0.50, "pen_0.45": 0.60}))
    comparison = promotion.promote(tmp_path, worse, never_scored, reason="rollback of a bad retrain")
    assert comparison is not None and not comparison.beats
    entry = json.loads((tmp_path / promotion.RECORD).read_text())
    assert entry["reason"] == "rollback of a bad retrain" and entry["comparison"]["beats"] is False
    assert store.current_version(tmp_path) == worse


def test_reports_scored_differently_are_scored_again_on_the_same_digits(tmp_path, current):
    """The current model's report came from other digits (or another preprocessing): both models are scored again."""
    candidate = add(tmp_path, b"new", 0.994, report({"canvas": 0.99, "blur": 0.9, "pen_0.45": 0.9}, preprocessing=3))
    scored = []

    def score(model):
        scored.append(model.version)
        return report({"canvas": 0.99, "blur": 0.96 if model.version == candidate else 0.5, "pen_0.45": 0.97})

    promotion.promote(tmp_path, candidate, score)
    assert sorted(scored) == sorted([candidate, current])
    assert store.current_version(tmp_path) == candidate


def test_the_first_model_and_the_current_one(tmp_path):
    first = add(tmp_path, b"first", 0.99, None)
    assert promotion.promote(tmp_path, first, never_scored) is None
    assert store.current_version(tmp_path) == first
    with pytest.raises(PromotionError, match="already the current model"):
        promotion.promote(tmp_path, first, never_scored)


def test_a_version_prefix_resolves_to_one_model(tmp_path, current):
    assert store.resolve(tmp_path, current[:8]) == current
    with pytest.raises(store.ModelStoreError, match="no model"):
        store.resolve(tmp_path, "zzzz")
    with pytest.raises(store.ModelStoreError, match="no model"):
        store.resolve(tmp_path, "")
