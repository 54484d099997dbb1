"""The CNN. Normalisation is the first layer, so the exported graph takes the contract's [0, 1] input."""

from __future__ import annotations

import torch
from torch import nn

from app.mnist.contract import MNIST_MEAN, MNIST_STD, NUM_CLASSES


class DigitNet(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, channels: tuple[int, int] = (32, 64), hidden: int = 128, dropout: float = 0.25) -> None:
        super().__init__()
        c1, c2 = channels
        self.register_buffer("mean", torch.tensor(MNIST_MEAN))
        self.register_buffer("std", torch.tensor(MNIST_STD))
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c2 * 7 * 7, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features((x - self.mean) / self.std))
