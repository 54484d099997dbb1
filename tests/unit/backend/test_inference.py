"""The classifier: requests that wait together share one model run, and each gets its own answer."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.backend.inference import Classifier, load_classifier
from app.backend.main import create_app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier(ROOT / "models", None, 1)


def test_concurrent_requests_share_one_run_and_each_gets_its_own_answer(classifier, mnist_sample, monkeypatch):
    images, labels = mnist_sample
    pixels = (images[:12] / 255.0).astype(np.float32)
    alone = classifier.predict(pixels)
    runs: list[int] = []
    predict = classifier.predict
    monkeypatch.setattr(classifier, "predict", lambda batch: runs.append(len(batch)) or predict(batch))

    async def twelve_at_once():
        return await asyncio.gather(*(classifier.predict_one(image) for image in pixels))

    together = asyncio.run(twelve_at_once())
    assert runs == [12]
    assert [p.digit for p in together] == [p.digit for p in alone] == labels[:12].tolist()
    assert [p.probabilities for p in together] == [p.probabilities for p in alone]


def test_a_failed_run_fails_each_request_that_shared_it(classifier, monkeypatch):
    def broken(batch):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(classifier, "predict", broken)

    async def three_at_once():
        image = np.zeros((28, 28), np.float32)
        return await asyncio.gather(*(classifier.predict_one(image) for _ in range(3)), return_exceptions=True)

    outcomes = asyncio.run(three_at_once())
    assert [str(outcome) for outcome in outcomes] == ["model exploded"] * 3
    assert classifier._waiting == []


def test_a_request_whose_client_left_does_not_break_the_run_it_shared(classifier):
    async def one_cancelled():
        image = np.zeros((28, 28), np.float32)
        leaving = asyncio.ensure_future(classifier.predict_one(image))
        staying = asyncio.ensure_future(classifier.predict_one(image))
        await asyncio.sleep(0)  # both are waiting for the run
        leaving.cancel()
        return await staying, leaving.cancelled()

    prediction, cancelled = asyncio.run(one_cancelled())
    assert cancelled
    assert len(prediction.probabilities) == 10


def test_what_the_app_loads_is_kept_out_of_the_collector_while_it_serves(settings):
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 200
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_answers_below_the_models_threshold_are_not_sure_and_counted(mnist_sample, default_model):
    """The threshold is the model's own (its calibration in the metadata); a model without one is always sure."""
    import dataclasses

    from app.backend import metrics

    pixels = np.concatenate([(mnist_sample[0][:4] / 255.0), np.full((1, 28, 28), 0.5)]).astype(np.float32)
    uncalibrated = {k: v for k, v in default_model.metadata.items() if k != "calibration"}
    assert all(p.sure for p in Classifier(dataclasses.replace(default_model, metadata=uncalibrated)).predict(pixels))

    strict = {**default_model.metadata, "calibration": {"not_sure_below": 0.999999}}
    classifier = Classifier(dataclasses.replace(default_model, metadata=strict))
    counter = metrics.NOT_SURE.labels(version=default_model.version)
    before = counter._value.get()
    answers = classifier.predict(pixels)
    unsure = [not p.sure for p in answers]
    expected = [max(p.probabilities) < 0.999999 for p in answers]
    assert unsure == expected and unsure[-1]  # a flat grey square is nothing the model is sure of
    assert counter._value.get() - before == sum(unsure)
