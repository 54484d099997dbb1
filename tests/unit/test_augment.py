"""Training augmentation (app/training/augment.py): the conditions of the suite, fitted as the preprocessing fits."""

import numpy as np
import pytest
import torch

from app.mnist.preprocessing import preprocess
from app.training.augment import augment, refit
from app.training.pipeline import load_parameters


@pytest.fixture
def batch(mnist_sample):
    return torch.from_numpy(mnist_sample[0][:64].astype(np.float32) / 255.0).unsqueeze(1)


def test_refit_places_digits_as_the_preprocessing_does(batch):
    """A digit refitted in torch is (nearly) the digit the real preprocessing makes of the same picture."""
    ours = refit(batch)[:, 0].numpy()
    theirs = np.stack([preprocess(image) for image in batch[:, 0].numpy()])
    assert np.abs(ours - theirs).mean() < 0.04


def test_augmented_batches_keep_the_contract_and_vary(batch):
    params = load_parameters()["training"]["augment"]
    a = augment(batch, params, torch.Generator().manual_seed(0))
    b = augment(batch, params, torch.Generator().manual_seed(1))
    assert a.shape == batch.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, augment(batch, params, torch.Generator().manual_seed(0)))  # seeded: reproducible
    assert float((a - b).abs().mean()) > 0.02
    # every digit still has ink, fitted in the 20 px box around the centre
    ink = a[:, 0] > 0.25
    assert bool(ink.flatten(1).any(1).all())
    rows = ink.any(2).float().argmax(1), 27 - ink.any(2).flip(1).float().argmax(1)
    assert int((rows[1] - rows[0]).max()) <= 21


def test_a_thick_pen_grows_the_strokes(batch):
    params = {**load_parameters()["training"]["augment"], "pen_kernels": [9], "untouched_share": 0.0}
    params.update(hard_weights={"none": 0.0, "pen": 1.0, "rotation": 0.0, "blur": 0.0, "low_res": 0.0})
    params.update(rotation_deg=0, scale=0, shear=0)
    thick = augment(batch, params, torch.Generator().manual_seed(0))
    assert float((thick > 0.5).float().mean()) > 1.5 * float((refit(batch) > 0.5).float().mean())
