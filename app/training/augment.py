"""Training augmentation that matches the robustness suite's conditions, batched in torch.

Each image of a batch is drawn with another pen (strokes grown by a max filter), rotated, scaled and sheared,
sometimes blurred or brought down to a few pixels and scaled back up — then fitted again the way
`app.mnist.preprocessing` fits every picture (longest side of the ink to the 20 px box, centre of mass at the
centre). So the model learns from what the preprocessing hands it for a thick pen or a blurred photo, not from
MNIST's strokes alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.mnist.contract import DIGIT_BOX, IMAGE_SIZE
from app.mnist.preprocessing import INK_THRESHOLD

PAD = IMAGE_SIZE // 2  # room for strokes to grow and digits to turn: the work canvas is 56 px
WORK = IMAGE_SIZE + 2 * PAD


def _pick(weights: list[float], n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.multinomial(torch.tensor(weights, dtype=torch.float), n, replacement=True, generator=generator)


def _uniform(n: int, half_width: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * 2 - 1) * half_width


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=torch.float)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    kernel = _gaussian_kernel(sigma)
    size = kernel.numel()
    x = F.conv2d(x, kernel.view(1, 1, 1, size), padding=(0, size // 2))
    return F.conv2d(x, kernel.view(1, 1, size, 1), padding=(size // 2, 0))


def augment(batch: torch.Tensor, params: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
    """A (N, 1, 28, 28) batch in [0, 1] → the same digits as the suite's conditions would show them."""
    n = batch.shape[0]
    x = F.pad(batch, (PAD, PAD, PAD, PAD))
    # Each image gets at most one hard condition (a thick pen, a wide turn, blur, low resolution): together they make
    # blobs no one could read, which only teach the model noise.
    hard = _pick([float(w) for w in params["hard_weights"].values()], n, generator)
    kinds = {name: hard == index for index, name in enumerate(params["hard_weights"])}

    # The pen: a max filter of size k grows every stroke by k - 1 pixels (MNIST's are ~2.4 px of a 20 px digit).
    pens = [int(k) for k in params["pen_kernels"]]
    chosen = _pick([1.0] * len(pens), n, generator)
    drawn = x.clone()
    for index, k in enumerate(pens):
        rows = kinds["pen"] & (chosen == index)
        if k > 1 and bool(rows.any()):
            drawn[rows] = F.max_pool2d(x[rows], k, stride=1, padding=k // 2)
    x = drawn

    # Every image turns a little, scales and shears, about the work canvas's centre; a wide turn is a hard condition.
    angle = torch.where(
        kinds["rotation"],
        _uniform(n, np.deg2rad(params["wide_rotation_deg"]), generator),
        _uniform(n, np.deg2rad(params["rotation_deg"]), generator),
    )
    scale = 1 + _uniform(n, params["scale"], generator)
    shear = _uniform(n, params["shear"], generator)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero = torch.zeros(n)
    theta = torch.stack([torch.stack([cos, -sin + shear, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)

    sigmas = [float(s) for s in params["blur_sigmas"]]
    which = _pick([1.0] * len(sigmas), n, generator)
    for index, sigma in enumerate(sigmas):
        rows = kinds["blur"] & (which == index)
        if bool(rows.any()):
            x[rows] = _blur(x[rows], sigma)
    sizes = [int(s) for s in params["low_res_sizes"]]
    which = _pick([1.0] * len(sizes), n, generator)
    for index, size in enumerate(sizes):
        rows = kinds["low_res"] & (which == index)
        if bool(rows.any()):
            small = F.interpolate(x[rows], size=(size, size), mode="area")
            x[rows] = F.interpolate(small, size=(WORK, WORK), mode="nearest")
    out = refit(x)
    # A share of every batch is MNIST as it is, so the model keeps MNIST's own strokes and placement.
    untouched = torch.rand(n, generator=generator) < params["untouched_share"]
    out[untouched] = batch[untouched]
    return out


def refit(x: torch.Tensor) -> torch.Tensor:
    """Each (N, 1, H, W) image fitted as the preprocessing fits a picture: the ink's longest side to the digit box,
    its centre of mass at the centre of a 28 px square."""
    n, _, height, width = x.shape
    peak = x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    x = x / peak
    ink = (x > INK_THRESHOLD)[:, 0]
    ys = torch.arange(height, dtype=torch.float).view(1, height, 1)
    xs = torch.arange(width, dtype=torch.float).view(1, 1, width)
    big = torch.tensor(1e9)
    top = torch.where(ink, ys, big).amin(dim=(1, 2))
    bottom = torch.where(ink, ys, -big).amax(dim=(1, 2))
    left = torch.where(ink, xs, big).amin(dim=(1, 2))
    right = torch.where(ink, xs, -big).amax(dim=(1, 2))
    extent = torch.maximum(bottom - top, right - left).clamp_min(0) + 1
    empty = ~ink.any(dim=2).any(dim=1)
    extent = torch.where(empty, torch.tensor(float(DIGIT_BOX)), extent)
    mass = x[:, 0].sum(dim=(1, 2)).clamp_min(1e-6)
    cy = (x[:, 0] * ys).sum(dim=(1, 2)) / mass + 0.5  # continuous coordinates: pixel i spans [i, i + 1)
    cx = (x[:, 0] * xs).sum(dim=(1, 2)) / mass + 0.5
    step = extent / DIGIT_BOX  # source pixels per output pixel
    half = IMAGE_SIZE / 2
    zero = torch.zeros(n)
    theta = torch.stack(
        [
            torch.stack([step * half / (width / 2), zero, cx / (width / 2) - 1], 1),
            torch.stack([zero, step * half / (height / 2), cy / (height / 2) - 1], 1),
        ],
        1,
    )
    # Smooth before sampling down, as the preprocessing's Lanczos resize does, so thick digits do not alias.
    smoothed = torch.where((step > 1.3).view(n, 1, 1, 1), F.avg_pool2d(x, 3, stride=1, padding=1), x)
    grid = F.affine_grid(theta, [n, 1, IMAGE_SIZE, IMAGE_SIZE], align_corners=False)
    return F.grid_sample(smoothed, grid, align_corners=False).clamp(0.0, 1.0)
