"""Training augmentation (app/training/augment.py): the conditions of the suite, fitted as the preprocessing fits."""

import numpy as np
import pytest
import torch

from app.mnist import robustness
from app.mnist.preprocessing import preprocess
from app.training.augment import PAD, augment, pen, refit, scribbles
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
    params = {**load_parameters()["training"]["augment"], "pen_share": [0.45, 0.45], "untouched_share": 0.0}
    params.update(hard_weights={"none": 0.0, "pen": 1.0, "rotation": 0.0, "blur": 0.0, "low_res": 0.0})
    params.update(rotation_deg=0, scale=0, shear=0)
    thick = augment(batch, params, torch.Generator().manual_seed(0))
    assert float((thick > 0.5).float().mean()) > 1.5 * float((refit(batch) > 0.5).float().mean())


@pytest.mark.parametrize("share", [0.25, 0.45])
def test_the_pen_draws_as_the_suite_draws(batch, share):
    """A digit given a thick pen in training is (nearly) what the preprocessing makes of the suite's drawing with the
    same pen: the augmentation trains on the conditions the suite scores, not a look-alike."""
    digits = batch[:32]
    ours = refit(pen(torch.nn.functional.pad(digits, (PAD,) * 4), torch.full((32,), share)))[:, 0].numpy()
    drawn = [
        robustness.draw((d * 255).astype(np.uint8), pen=share * robustness.DIGIT_HEIGHT) for d in digits[:, 0].numpy()
    ]
    theirs = np.stack([preprocess(image) for image in drawn])
    assert np.abs(ours - theirs).mean() < 0.06
    # and the pen is what makes them alike: MNIST's own strokes are further from the suite's drawing
    thin = refit(torch.nn.functional.pad(digits, (PAD,) * 4))[:, 0].numpy()
    assert np.abs(thin - theirs).mean() > 1.5 * np.abs(ours - theirs).mean()


def test_a_pen_thinner_than_mnists_leaves_the_digit_as_it_is(batch):
    assert torch.equal(pen(batch, torch.full((len(batch),), 0.05)), batch)


def test_scribbles_are_strokes_fitted_like_digits():
    """Outlier exposure's pictures: ink in every one, fitted in the digit box as digits are, seeded."""
    params = load_parameters()["training"]["outliers"]
    a = scribbles(32, params, torch.Generator().manual_seed(0))
    assert a.shape == (32, 1, 28, 28) and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, scribbles(32, params, torch.Generator().manual_seed(0)))
    ink = a[:, 0] > 0.25
    assert bool(ink.flatten(1).any(1).all())
    extent = ink.any(2).float().sum(1).maximum(ink.any(1).float().sum(1))
    assert int(extent.min()) >= 17 and int(extent.max()) <= 21  # the longest side fills the 20 px box
    assert 0.05 < float(ink.float().mean()) < 0.4  # strokes, not blobs
