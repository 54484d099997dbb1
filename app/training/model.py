"""The CNN. Normalisation is the first layer, so the exported graph takes the contract's [0, 1] input."""

from __future__ import annotations

import torch
from torch import nn

from app.mnist.contract import MNIST_MEAN, MNIST_STD, NUM_CLASSES


class DigitNet(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, channels: tuple[int, int] = (32, 64), hidden: int = 128, dropout: float = 0.25, convs: int = 1
    ) -> None:
        """Two blocks of CONVS 3x3 convolutions (CHANNELS wide) each followed by a 2x2 max pool, then two dense
        layers. Two convolutions a block see 5x5 before each pool: thick and blurred strokes need the wider view."""
        super().__init__()
        self.register_buffer("mean", torch.tensor(MNIST_MEAN))
        self.register_buffer("std", torch.tensor(MNIST_STD))
        layers: list[nn.Module] = []
        before = 1
        for width in channels:
            for _ in range(convs):
                layers += [
                    nn.Conv2d(before, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                before = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        c2 = channels[-1]
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
