"""Temperature scaling and the "not sure" threshold (app/training/calibration.py)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app.training import calibration


def overconfident(n: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a model that is right ~80 % of the time but three times too sure of itself. Each score is unit
    Gaussian noise, shifted by 2.5 for the true class: the true posterior's logits are 2.5 times the scores."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    scores = rng.normal(0, 1, (n, 10))
    scores[np.arange(n), labels] += 2.5
    return torch.tensor(3.0 * 2.5 * scores, dtype=torch.float32), torch.tensor(labels)


def test_the_temperature_of_an_overconfident_model_is_found():
    logits, labels = overconfident()
    assert calibration.fit_temperature(logits, labels) == pytest.approx(3.0, rel=0.1)


def test_calibration_lowers_the_expected_calibration_error_and_keeps_every_answer():
    logits, labels = overconfident()
    fitted = calibration.calibrate(logits, labels, accuracy=0.99)
    assert fitted.ece_before > 0.1 and fitted.ece_after < 0.03
    model = calibration.Calibrated(torch.nn.Identity(), fitted.temperature)
    assert torch.equal(model(logits).argmax(1), logits.argmax(1))
    assert torch.allclose(model(logits), logits / fitted.temperature)


def test_the_threshold_keeps_the_answers_above_it_that_accurate():
    logits, labels = overconfident()
    probabilities = F.softmax(logits / calibration.fit_temperature(logits, labels), dim=1).numpy()
    cut, share, accuracy = calibration.threshold(probabilities, labels.numpy(), 0.99)
    answered = probabilities.max(1) >= cut
    assert answered.mean() == pytest.approx(share, abs=1e-3)
    assert (probabilities.argmax(1) == labels.numpy())[answered].mean() >= 0.99 and accuracy >= 0.99
    assert 0.1 < share < 0.9  # it answers some and holds some back: the threshold is not at either end


def test_a_perfectly_calibrated_model_has_no_calibration_error():
    probabilities = np.array([[0.9, 0.1]] * 10)
    labels = np.array([0] * 9 + [1])
    assert calibration.expected_calibration_error(probabilities, labels) == pytest.approx(0.0, abs=1e-9)


def test_no_threshold_reaches_an_impossible_accuracy():
    probabilities = np.array([[0.6, 0.4], [0.7, 0.3]])
    assert calibration.threshold(probabilities, np.array([1, 1]), 0.99) == (1.0, 0.0, 0.0)
