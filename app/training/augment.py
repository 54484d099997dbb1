"""Training augmentation that matches the robustness suite's conditions, batched in torch.

Each image of a batch is drawn with another pen (strokes grown by a max filter), rotated, scaled and sheared,
sometimes blurred or brought down to a few pixels and scaled back up — then fitted again the way
`app.mnist.preprocessing` fits every picture (longest side of the ink to the 20 px box, centre of mass at the
centre). So the model learns from what the preprocessing hands it for a thick pen or a blurred photo, not from
MNIST's strokes alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.mnist.contract import DIGIT_BOX, IMAGE_SIZE
from app.mnist.preprocessing import INK_THRESHOLD
from app.mnist.robustness import MNIST_STROKE

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

    # The pen: each digit drawn again with a round pen a share of its height wide, as the suite draws it.
    low, high = (float(v) for v in params["pen_share"])
    share = low + torch.rand(n, generator=generator) * (high - low)
    if bool(kinds["pen"].any()):
        x[kinds["pen"]] = pen(x[kinds["pen"]], share[kinds["pen"]])

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


def pen(x: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """Each (N, 1, H, W) digit drawn with a round pen SHARE (N,) of its height wide, as `robustness.draw` draws one:
    every pixel within the grown radius of the strokes' middle (ink >= 0.5) is ink, its edge anti-aliased. A share
    below MNIST's own stroke leaves the digit as it is."""
    n, _, height, width = x.shape
    ink = (x >= 0.5).float()
    rows = ink[:, 0].amax(dim=2)
    index = torch.arange(height, dtype=torch.float)
    top = torch.where(rows > 0, index, torch.tensor(float(height))).amin(dim=1)
    bottom = torch.where(rows > 0, index, torch.tensor(-1.0)).amax(dim=1)
    grow = ((share - MNIST_STROKE) * (bottom - top + 1).clamp_min(0) / 2).clamp_min(0)
    reach = int(math.ceil(float(grow.max()))) + 1 if n else 0
    padded = F.pad(ink, (reach, reach, reach, reach))
    out = torch.zeros_like(x)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            weight = (grow + 0.5 - math.hypot(dy, dx)).clamp(0.0, 1.0)
            if bool((weight > 0).any()):
                shifted = padded[:, :, reach + dy : reach + dy + height, reach + dx : reach + dx + width]
                out = torch.maximum(out, shifted * weight.view(n, 1, 1, 1))
    return torch.where((grow > 0).view(n, 1, 1, 1), out, x)


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


def scribbles(n: int, params: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
    """N pictures that hold no digit, (N, 1, 28, 28) fitted as digits are: a stroke through a few random points
    (between PARAMS' `points`), MNIST-like in width (half-width between `half_width`). The model learns to spread
    its answer over the ten digits for them (outlier exposure), so a scribble or a letter lands on "not sure"."""
    low, high = (int(v) for v in params["points"])
    count = torch.randint(low, high + 1, (n,), generator=generator)
    points = PAD + 4 + torch.rand(n, high, 2, generator=generator) * (IMAGE_SIZE - 8)  # inside the digit's box
    a, b = points[:, :-1], points[:, 1:]  # (N, S, 2) the segments; those past an image's count are unused
    used = torch.arange(high - 1).view(1, -1) < (count - 1).view(-1, 1)
    ys, xs = torch.meshgrid(torch.arange(WORK, dtype=torch.float), torch.arange(WORK, dtype=torch.float), indexing="ij")
    p = torch.stack([ys, xs], -1).view(1, 1, WORK * WORK, 2) + 0.5
    ab = (b - a).unsqueeze(2)
    t = (((p - a.unsqueeze(2)) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)).clamp(0, 1)
    distance = (p - a.unsqueeze(2) - t.unsqueeze(-1) * ab).norm(dim=-1)  # (N, S, WORK * WORK)
    distance = torch.where(used.unsqueeze(-1), distance, torch.tensor(float("inf"))).amin(dim=1)
    w_low, w_high = (float(v) for v in params["half_width"])
    half = w_low + torch.rand(n, 1, generator=generator) * (w_high - w_low)
    ink = (half + 0.5 - distance).clamp(0.0, 1.0).view(n, 1, WORK, WORK)
    return refit(ink)
