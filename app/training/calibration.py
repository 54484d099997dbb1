"""Honest confidence: temperature scaling fitted on held-out drawings, and the "not sure" threshold.

The top softmax probability of a network trained with cross-entropy is over-confident on pictures unlike its
training data. Dividing the logits by one temperature T, fitted to minimise the negative log-likelihood on held-out
validation images drawn the way users draw (Guo et al., 2017), leaves every answer as it was and makes the
probabilities mean what they say; the expected calibration error (ECE) measures it before and after. Below the
threshold chosen here the API answers "not sure": the lowest confidence above which the validation answers reach
ANSWERED_ACCURACY.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BINS = 15


@dataclass(frozen=True)
class Calibration:
    temperature: float
    ece_before: float
    ece_after: float
    not_sure_below: float  # answers less confident than this are "not sure"
    answered_share: float  # the validation images answered at or above it
    answered_accuracy: float  # and how many of those were right
    images: int

    def as_dict(self) -> dict[str, float]:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


class Calibrated(nn.Module):
    """MODEL's logits divided by its temperature: what is exported, so every consumer's softmax is calibrated."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """The gap between confidence and accuracy, averaged over equal-width confidence bins weighted by their size."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - right[inside].mean())
    return float(error)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 that minimises the cross-entropy of LOGITS / T (fitted as log T, so it stays positive)."""
    log_t = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = F.cross_entropy(logits / log_t.exp(), labels)
        value.backward()
        return value

    optimiser.step(loss)
    return float(log_t.detach().exp())


def threshold(probabilities: np.ndarray, labels: np.ndarray, accuracy: float) -> tuple[float, float, float]:
    """The lowest confidence at or above which the answers are ACCURACY right: (threshold, share answered, accuracy
    of those answered)."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    order = np.argsort(-confidence)
    running = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    good = np.flatnonzero(running >= accuracy)
    if not len(good):
        return 1.0, 0.0, 0.0
    last = good[-1]  # the most answers that still reach ACCURACY
    return float(confidence[order][last]), (last + 1) / len(order), float(running[last])


def calibrate(logits: torch.Tensor, labels: torch.Tensor, accuracy: float) -> Calibration:
    temperature = fit_temperature(logits, labels)
    y = labels.numpy()
    before = F.softmax(logits, dim=1).numpy()
    after = F.softmax(logits / temperature, dim=1).numpy()
    cut, share, answered = threshold(after, y, accuracy)
    return Calibration(
        temperature=temperature,
        ece_before=expected_calibration_error(before, y),
        ece_after=expected_calibration_error(after, y),
        not_sure_below=cut,
        answered_share=float(share),
        answered_accuracy=answered,
        images=len(y),
    )
