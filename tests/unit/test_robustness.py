"""The robustness suite (app/mnist/robustness.py): each condition renders what it names, and the preprocessing reads
what a person meant from it."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from app.mnist import contract, robustness
from app.mnist.preprocessing import EmptyImageError, decode_image, preprocess

RNG_SEED = 3


def prepared(data: bytes) -> np.ndarray:
    return preprocess(decode_image(data, robustness.MAX_PIXELS))


def rendered(name: str, digit: np.ndarray) -> bytes:
    return robustness.BY_NAME[name].render(digit, np.random.default_rng(RNG_SEED))


def reference(digit: np.ndarray) -> np.ndarray:
    """The digit as the canvas sends it by default, preprocessed: what every other condition should come close to."""
    return prepared(rendered("canvas", digit))


@pytest.mark.parametrize("condition", robustness.CONDITIONS, ids=lambda c: c.name)
def test_every_condition_is_an_image_the_api_accepts(condition, mnist_sample):
    data = condition.render(mnist_sample[0][0], np.random.default_rng(0))
    image = decode_image(data, robustness.MAX_PIXELS)
    assert image.width >= 8 and image.height >= 8


def test_the_suite_holds_every_condition_the_issue_names_once():
    names = [c.name for c in robustness.CONDITIONS]
    assert len(names) == len(set(names))
    for family in (
        "pen_",
        "small_corner",
        "rotated_",
        "blur",
        "low_res",
        "stray_",
        "transparent",
        "rounded",
        "16_bit",
        "palette",
        "uneven",
        "noise",
        "jpeg",
        "dark_on_light",
        "click",
        "letters",
        "scribbles",
    ):
        assert any(family in name for name in names), family


def test_the_16_bit_and_palette_pictures_are_what_they_say(mnist_sample):
    digit = mnist_sample[0][0]
    assert Image.open(io.BytesIO(rendered("png_16_bit", digit))).mode.startswith("I")
    assert Image.open(io.BytesIO(rendered("png_palette", digit))).mode == "P"


@pytest.mark.parametrize("name", ["transparent_margin", "rounded_corners", "png_16_bit"])
def test_transparency_and_bit_depth_give_the_digit_the_canvas_gives(name, mnist_sample):
    """Alpha is transparency, not ink (it was taken as ink: 8 % right, or every picture refused); 16 bits are scaled,
    not clipped: the model sees the same 28x28 picture as from the canvas."""
    for digit in mnist_sample[0][:10]:
        difference = np.abs(prepared(rendered(name, digit)) - reference(digit)).mean()
        assert difference < 0.002, f"{name}: mean difference {difference:.4f}"


@pytest.mark.parametrize("name", ["png_palette", "jpeg_q30"])
def test_lossy_formats_stay_close_to_the_canvas(name, mnist_sample):
    """8 colours and JPEG at quality 30 lose detail (a digit can move by a pixel), not the digit."""
    differences = [np.abs(prepared(rendered(name, d)) - reference(d)).mean() for d in mnist_sample[0][:10]]
    assert np.median(differences) < 0.01 and max(differences) < 0.1, np.round(differences, 3)


@pytest.mark.parametrize("name", ["stray_dot", "stray_tick"])
def test_a_stray_mark_beside_the_digit_is_dropped(name, mnist_sample):
    """The crop took in every mark (a dot beside the digit: 63 % right); the digit is the largest piece of ink."""
    unchanged = 0
    for digit in mnist_sample[0][:10]:
        with_mark = prepared(rendered(name, digit))
        without = prepared(robustness._png(robustness._gray(robustness.draw(digit, pen=22, height=170))))
        unchanged += bool(np.abs(with_mark - without).mean() < 0.005)
    assert unchanged >= 9, f"{name}: the mark changed {10 - unchanged} of 10 digits"


def test_a_click_is_no_digit():
    for seed in range(20):
        data = robustness.BY_NAME["click"].render(np.zeros((28, 28), np.uint8), np.random.default_rng(seed))
        with pytest.raises(EmptyImageError, match="click"):
            prepared(data)


def test_the_suite_prepared_in_worker_processes_scores_as_it_does_here(default_model, mnist_sample, monkeypatch):
    """Workers draw and prepare the suite's own conditions (one OpenBLAS thread each); the scores are the same, and
    this process's environment is left as it was."""
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    images, labels = mnist_sample[0][:40], mnist_sample[1][:40]
    classify = robustness.onnx_classifier(default_model.onnx_bytes)
    chosen = [c for c in robustness.CONDITIONS if c.name in {"pen_0.45", "stray_tick", "letters"}]
    seen: list[robustness.Result] = []
    apart = robustness.evaluate(
        classify, images, labels, chosen, seed=3, not_sure_below=0.8, workers=2, on_result=seen.append
    )
    here = robustness.evaluate(classify, images, labels, chosen, seed=3, not_sure_below=0.8, workers=1)
    assert apart == here and seen == apart and [r.condition for r in apart] == ["pen_0.45", "stray_tick", "letters"]
    assert "OPENBLAS_NUM_THREADS" not in os.environ


def test_evaluate_scores_answers_and_counts_refusals_as_wrong(mnist_sample):
    images, labels = mnist_sample[0][:6], mnist_sample[1][:6]
    conditions = [robustness.BY_NAME["canvas"], robustness.BY_NAME["click"]]

    def always_seven(batch: np.ndarray) -> np.ndarray:
        logits = np.zeros((len(batch), 10), np.float32)
        logits[:, 7] = 1
        return logits

    seen = []
    canvas, click = robustness.evaluate(always_seven, images, labels, conditions, on_result=seen.append)
    assert canvas.accuracy == round(float((labels == 7).mean()), 4) and canvas.refused == 0
    assert click.accuracy == 1.0 and click.refused == 1.0  # every click refused: right, for a condition with no digit
    assert [r.condition for r in seen] == ["canvas", "click"]
    report = robustness.report([canvas, click], 6, 0)
    assert report["conditions"]["canvas"]["accuracy"] == canvas.accuracy
    assert report["below_target"] == ([] if canvas.meets_target else ["canvas"])
    assert "| canvas |" in robustness.table(report)


def test_a_picture_without_a_digit_is_answered_right_when_the_model_is_not_sure(mnist_sample):
    """Letters and scribbles reach the model (the preprocessing cannot tell them from digits); what answers them is
    the model's "not sure": below the model's threshold, right; a confident digit, wrong. A digit is scored by its
    top answer whatever the confidence."""
    images, labels = mnist_sample[0][:8], mnist_sample[1][:8]
    conditions = [robustness.BY_NAME[name] for name in ("canvas", "letters", "scribbles")]

    def hesitant(batch: np.ndarray) -> np.ndarray:  # the right digit for digits (the fixture's labels), at 0.4
        logits = np.zeros((len(batch), 10), np.float32)
        logits[np.arange(len(batch)), labels[: len(batch)]] = np.log(0.4 * 9 / 0.6)
        return logits

    canvas, letters, scribbles = robustness.evaluate(hesitant, images, labels, conditions, not_sure_below=0.5)
    assert canvas.accuracy == 1.0 and canvas.not_sure == 1.0
    assert letters.refused == 0 and letters.accuracy == 1.0 and scribbles.accuracy == 1.0
    letters, scribbles = robustness.evaluate(hesitant, images, labels, conditions[1:], not_sure_below=0.3)
    assert letters.accuracy == 0.0 and scribbles.accuracy == 0.0 and letters.not_sure == 0.0
    report = robustness.report([letters], 8, 0, not_sure_below=0.3)
    assert report["not_sure_below"] == 0.3 and report["conditions"]["letters"]["not_sure"] == 0.0


def test_the_same_seed_samples_the_same_digits(mnist_sample):
    a = robustness.sample(*mnist_sample, 50, seed=1)
    b = robustness.sample(*mnist_sample, 50, seed=1)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], robustness.sample(*mnist_sample, 50, seed=2)[1])


def test_the_plot_is_a_png():
    results = [
        robustness.Result("canvas", 0.99, 0.0, 0.0, 0.97, 10),
        robustness.Result("blur", 0.5, 0.1, 0.2, 0.95, 10),
    ]
    assert robustness.plot(results, "t")[:8] == b"\x89PNG\r\n\x1a\n"


# The committed model's open gap (README, "Robustness"): a pen 0.45 of the digit's height, as measured on the fixture's
# 500 digits (the first of the test set; the README's figures are on the suite's seeded sample, where 8x8 drawings
# reach 96.4 %, here 94.8 %). Any other condition below its target, or one of these more than 2 points worse, fails.
KNOWN_GAPS = {"pen_0.45": 0.954, "low_res_8x8": 0.948}


@pytest.mark.slow
def test_the_committed_model_meets_its_targets_but_the_known_gaps(default_model, mnist_sample):
    """Every condition at its target on the fixture's 500 test digits, but KNOWN_GAPS, which must not get worse."""
    classify = robustness.onnx_classifier(default_model.onnx_bytes)
    threshold = contract.not_sure_below(default_model.metadata)
    results = robustness.evaluate(classify, *mnist_sample, not_sure_below=threshold)
    missed = {r.condition: r.accuracy for r in results if not r.meets_target}
    assert set(missed) <= set(KNOWN_GAPS), missed
    worse = {name: accuracy for name, accuracy in missed.items() if accuracy < KNOWN_GAPS[name] - 0.02}
    assert not worse, worse
