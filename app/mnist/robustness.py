"""The robustness suite: MNIST test digits turned into the pictures people actually send, one named condition each.

Every condition draws a digit on a canvas the way a person or a phone would (pen width, size and place on the
canvas, rotation, blur, low resolution, stray marks, transparency, bit depth, palette, lighting, noise, JPEG,
polarity) and encodes it as the bytes the API receives. `evaluate` sends them through the real path —
`decode_image`, then `preprocess` — and scores a model on each condition. A picture refused as "no digit" counts
as wrong. The refusals the suite expects (a click, a blank canvas) are conditions whose expected answer is
"no digit".

Each condition is declared once in CONDITIONS; the table, the plot, the model's metadata and the tests derive
from it.
"""

from __future__ import annotations

import io
import math
import os
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from app.mnist import blas, contract
from app.mnist.preprocessing import VERSION as PREPROCESSING_VERSION
from app.mnist.preprocessing import PreprocessingError, decode_image, preprocess

CANVAS = 280  # the frontend's canvas, in pixels
DIGIT_HEIGHT = 200  # a digit drawn to fill most of it
DEFAULT_PEN = 22  # the frontend's default stroke width, in canvas pixels
MNIST_STROKE = 0.12  # MNIST's own stroke width relative to the digit's height (about 2.4 px in the 20 px box)
MAX_PIXELS = 4_000_000
NO_DIGIT = -1  # the expected answer of conditions that hold no digit: refused as no digit, or "not sure"


@dataclass(frozen=True)
class Condition:
    name: str
    description: str
    render: Callable[[np.ndarray, np.random.Generator], bytes]
    target: float  # the accuracy every model should reach on it
    expects_digit: bool = True


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def draw(
    digit: np.ndarray,
    *,
    height: float = DIGIT_HEIGHT,
    pen: float | None = None,
    centre: tuple[float, float] = (CANVAS / 2, CANVAS / 2),
    angle: float = 0.0,
    canvas: int = CANVAS,
) -> np.ndarray:
    """The digit as ink in [0, 1] (1 = ink) on a CANVAS-square, HEIGHT pixels tall around CENTRE (y, x).

    PEN, in canvas pixels, is the stroke width to draw with (MNIST's strokes grown by a disk); None keeps MNIST's.
    """
    rows = np.flatnonzero(digit.any(axis=1))
    cols = np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255.0
    scale = height / crop.shape[0]
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    ink = np.asarray(Image.fromarray(crop, mode="F").resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
    ink = np.clip(ink, 0.0, 1.0)
    if pen is not None:
        grow = (pen - MNIST_STROKE * height) / 2
        if grow > 0:  # every pixel within GROW of the stroke's middle line is ink, its edge anti-aliased
            ink = np.pad(ink, math.ceil(grow) + 2)
            distance = ndimage.distance_transform_edt(ink < 0.5)
            ink = np.clip(grow + 0.5 - distance, 0.0, 1.0).astype(np.float32)
    if angle:
        ink = np.clip(ndimage.rotate(ink, angle, reshape=True, order=1), 0.0, 1.0)
    out = np.zeros((canvas, canvas), dtype=np.float32)
    top = round(centre[0] - ink.shape[0] / 2)
    left = round(centre[1] - ink.shape[1] / 2)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(canvas, top + ink.shape[0]), min(canvas, left + ink.shape[1])
    out[y0:y1, x0:x1] = ink[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


def _gray(ink: np.ndarray, dark_on_light: bool = False) -> Image.Image:
    values = 1.0 - ink if dark_on_light else ink
    return Image.fromarray(np.round(values * 255).astype(np.uint8), mode="L")


def _canvas(ink: np.ndarray) -> Image.Image:
    """What the frontend's canvas sends: white strokes whose coverage is the alpha channel, no background."""
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.round(ink * 255).astype(np.uint8)
    return Image.fromarray(rgba, mode="RGBA")


def _sent_by_the_canvas(strokes: Image.Image) -> bytes:
    """What the canvas sends for STROKES drawn on a blank "L" picture (255: ink)."""
    return _png(_canvas(np.asarray(strokes, dtype=np.float32) / 255.0))


def _default(digit: np.ndarray) -> np.ndarray:
    return draw(digit, pen=DEFAULT_PEN)


def _pen(share: float) -> Callable[[np.ndarray, np.random.Generator], bytes]:
    def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
        return _png(_canvas(draw(digit, pen=share * DIGIT_HEIGHT)))

    return render


def _small_in_a_corner(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    height = float(rng.uniform(55, 70))
    margin = height / 2 + 12
    centre = (float(rng.choice([margin, CANVAS - margin])), float(rng.choice([margin, CANVAS - margin])))
    return _png(_canvas(draw(digit, height=height, pen=DEFAULT_PEN * 0.6, centre=centre)))


def _rotated(degrees: float) -> Callable[[np.ndarray, np.random.Generator], bytes]:
    def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
        angle = float(rng.choice([-1, 1]) * rng.uniform(0.8 * degrees, degrees))
        return _png(_canvas(draw(digit, pen=DEFAULT_PEN, height=170, angle=angle)))

    return render


def _blurred(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    # sigma 0.1 of the digit's height: about 2 px at MNIST's scale (its digits are 20 px tall)
    ink = ndimage.gaussian_filter(_default(digit), sigma=0.1 * DIGIT_HEIGHT)
    return _png(_gray(ink / max(float(ink.max()), 1e-6), dark_on_light=True))


def _low_resolution(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    small = Image.fromarray(np.round(_default(digit) * 255).astype(np.uint8)).resize((8, 8), Image.Resampling.BOX)
    return _png(small.resize((CANVAS, CANVAS), Image.Resampling.NEAREST))


def _beside(ink: np.ndarray, rng: np.random.Generator, gap: float) -> tuple[float, float]:
    """A point GAP pixels off the digit's box, on a random side: where a stray mark lands."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    side = int(rng.integers(4))
    along = float(rng.uniform(0.2, 0.8))
    if side == 0:
        return top - gap, left + along * (right - left)
    if side == 1:
        return bottom + gap, left + along * (right - left)
    if side == 2:
        return top + along * (bottom - top), left - gap
    return top + along * (bottom - top), right + gap


def _stray_dot(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    ink = draw(digit, pen=DEFAULT_PEN, height=170)
    image = _gray(ink)
    y, x = _beside(ink, rng, gap=float(rng.uniform(18, 40)))
    r = DEFAULT_PEN / 2
    ImageDraw.Draw(image).ellipse((x - r, y - r, x + r, y + r), fill=255)
    return _png(image)


def _stray_tick(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    ink = draw(digit, pen=DEFAULT_PEN, height=170)
    image = _gray(ink)
    y, x = _beside(ink, rng, gap=float(rng.uniform(25, 45)))
    dy, dx = rng.uniform(-20, 20, size=2)
    ImageDraw.Draw(image).line((x - dx, y - dy, x + dx, y + dy), fill=255, width=DEFAULT_PEN)
    return _png(image)


def _transparent_margin(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    image = _gray(_default(digit), dark_on_light=True).convert("RGBA")
    framed = Image.new("RGBA", (CANVAS + 120, CANVAS + 120), (0, 0, 0, 0))
    framed.paste(image, (60, 60))
    return _png(framed)


def _rounded_corners(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    image = _gray(_default(digit), dark_on_light=True).convert("RGBA")
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, CANVAS - 1, CANVAS - 1), radius=48, fill=255)
    image.putalpha(mask)
    return _png(image)


def _sixteen_bit(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    values = np.round((1.0 - _default(digit)) * 65535).astype(np.uint16)
    return _png(Image.fromarray(values))  # uint16 → mode I;16


def _palette(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    rgb = _gray(_default(digit), dark_on_light=True).convert("RGB")
    return _png(rgb.quantize(colors=8))


def _uneven_lighting(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A photo of ink on paper lit from one side: the paper goes from bright to a third of it."""
    ink = _default(digit)
    angle = float(rng.uniform(0, 2 * math.pi))
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS] / (CANVAS - 1) - 0.5
    light = 0.65 + 0.7 * (xx * math.cos(angle) + yy * math.sin(angle))  # 0.3 .. 1.0 across the picture
    reflectance = 0.92 - 0.8 * ink
    return _png(Image.fromarray(np.round(np.clip(light * reflectance, 0, 1) * 255).astype(np.uint8)))


def _noisy(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    values = 0.85 - 0.7 * _default(digit) + rng.normal(0, 0.12, (CANVAS, CANVAS))
    return _png(Image.fromarray(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)))


def _jpeg_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return _jpeg(_gray(_default(digit), dark_on_light=True), quality=30)


def _click(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A single click on the canvas: one dot of the default pen, anywhere."""
    image = Image.new("L", (CANVAS, CANVAS), 0)
    y, x = float(rng.uniform(30, 250)), float(rng.uniform(30, 250))
    r = DEFAULT_PEN / 2
    ImageDraw.Draw(image).ellipse((x - r, y - r, x + r, y + r), fill=255)
    return _sent_by_the_canvas(image)


# Pictures that hold no digit but are not blank: a model should answer "not sure" to most of them.
LIKE_A_DIGIT = set("O o D Q d I l i j J L T Z z S s G b B g q p y".split())  # a 0, 1, 2, 5, 6, 7, 8 or 9 drawn
LETTERS = "".join(c for c in string.ascii_uppercase + string.ascii_lowercase if c not in LIKE_A_DIGIT)


def _letter(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A letter drawn on the canvas about as tall as a digit, in Pillow's own font (the same on every machine)."""
    letter = LETTERS[int(rng.integers(len(LETTERS)))]
    font = ImageFont.load_default(size=int(rng.uniform(150, 220)))
    image = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(image).text((CANVAS / 2, CANVAS / 2), letter, fill=255, font=font, anchor="mm", stroke_width=6)
    return _sent_by_the_canvas(image)


def _scribble(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A scribble: a stroke of the default pen through four to eight random points."""
    points = [tuple(rng.uniform(40, CANVAS - 40, size=2)) for _ in range(int(rng.integers(4, 9)))]
    image = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(image).line(points, fill=255, width=DEFAULT_PEN, joint="curve")
    return _sent_by_the_canvas(image)


CONDITIONS: tuple[Condition, ...] = (
    Condition("canvas", "the canvas: default pen, digit filling it", lambda d, r: _png(_canvas(_default(d))), 0.97),
    Condition("dark_on_light", "dark ink on white paper, RGB", lambda d, r: _png(_gray(_default(d), True)), 0.97),
    Condition("pen_0.25", "pen a quarter of the digit's height", _pen(0.25), 0.97),
    Condition("pen_0.35", "pen 0.35 of the digit's height", _pen(0.35), 0.97),
    Condition("pen_0.45", "pen 0.45 of the digit's height", _pen(0.45), 0.97),
    Condition("small_corner", "a 55-70 px digit in a corner of the canvas", _small_in_a_corner, 0.97),
    Condition("rotated_25", "rotated 20-25 degrees either way", _rotated(25), 0.97),
    Condition("rotated_30", "rotated 24-30 degrees either way", _rotated(30), 0.97),
    Condition("blur", "Gaussian blur, sigma 0.1 of the height (2 px at MNIST's scale)", _blurred, 0.95),
    Condition("low_res_8x8", "drawn at 8x8 and scaled up", _low_resolution, 0.95),
    Condition("stray_dot", "a dot beside the digit", _stray_dot, 0.97),
    Condition("stray_tick", "a short stroke beside the digit", _stray_tick, 0.97),
    Condition("transparent_margin", "RGBA, a transparent margin around white paper", _transparent_margin, 0.97),
    Condition("rounded_corners", "RGBA, transparent rounded corners", _rounded_corners, 0.97),
    Condition("png_16_bit", "16-bit grayscale PNG", _sixteen_bit, 0.97),
    Condition("png_palette", "8-colour palette PNG", _palette, 0.97),
    Condition("uneven_light", "a photo lit from one side (paper from 100 % to 30 %)", _uneven_lighting, 0.97),
    Condition("noise", "Gaussian noise, sigma 0.12", _noisy, 0.97),
    Condition("jpeg_q30", "JPEG at quality 30", _jpeg_photo, 0.97),
    Condition("click", "a single click: no digit", _click, 0.99, expects_digit=False),
    Condition("letters", "a letter, no digit: answered not sure", _letter, 0.5, expects_digit=False),
    Condition("scribbles", "a scribble, no digit: answered not sure", _scribble, 0.5, expects_digit=False),
)
BY_NAME = {condition.name: condition for condition in CONDITIONS}

Classifier = Callable[[np.ndarray], np.ndarray]  # (N, 28, 28) float32 → (N, 10) logits
Prepared = tuple[np.ndarray, list[int]]  # the model inputs of a condition's pictures, and which pictures they are


@dataclass(frozen=True)
class Result:
    condition: str
    accuracy: float  # the share answered right (for conditions without a digit: "no digit" or "not sure")
    refused: float  # the share answered "no digit"
    not_sure: float  # the share of the answers the model was not sure of (below its threshold)
    target: float
    n: int

    @property
    def meets_target(self) -> bool:
        return self.accuracy >= self.target


def render(condition: Condition, digits: np.ndarray, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [condition.render(digit, rng) for digit in digits]


def evaluate(
    classify: Classifier,
    digits: np.ndarray,
    labels: np.ndarray,
    conditions: Sequence[Condition] = CONDITIONS,
    seed: int = 0,
    prepare: Callable[[Image.Image], np.ndarray] = preprocess,
    on_result: Callable[[Result], None] | None = None,
    not_sure_below: float = 0.0,
    workers: int | None = None,
) -> list[Result]:
    """Each condition's accuracy on DIGITS through decode_image and PREPARE (the real preprocessing); ON_RESULT is
    called with each condition's result as it is scored (progress). A digit is scored by the model's top answer;
    a picture without one is answered right when refused or answered with a confidence below NOT_SURE_BELOW.

    The suite's own conditions through the real preprocessing are drawn and prepared in WORKERS processes (one per
    core by default; 1: here), each with one OpenBLAS thread (app/mnist/blas.py): 22 conditions on 500 digits took
    half the time on two cores. Other conditions or another PREPARE are prepared here."""
    ready = prepared(digits, conditions, seed, prepare, workers)
    return score_prepared(classify, conditions, ready, labels, not_sure_below, on_result)


def prepared(
    digits: np.ndarray,
    conditions: Sequence[Condition] = CONDITIONS,
    seed: int = 0,
    prepare: Callable[[Image.Image], np.ndarray] = preprocess,
    workers: int | None = None,
) -> Iterator[Prepared]:
    """Each condition's model inputs for DIGITS, through decode_image and PREPARE, and the indices of the pictures
    read as a digit: yielded in order, each as soon as it is ready, for `score_prepared` to score — one model
    (`evaluate`) or several on the same pictures (bench/validation_suite.py). Where they are prepared: `evaluate`."""
    ours = prepare is preprocess and all(BY_NAME.get(c.name) is c for c in conditions)
    workers = min(workers or os.cpu_count() or 1, len(conditions)) if ours else 1
    if workers > 1:
        with blas.for_children(), ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            names = [condition.name for condition in conditions]
            yield from pool.map(_prepare_named, names, [digits] * len(names), [seed] * len(names))
        return
    for condition in conditions:
        yield _prepare(condition, digits, seed, prepare)


def score_prepared(
    classify: Classifier,
    conditions: Sequence[Condition],
    ready: Iterable[Prepared],
    labels: np.ndarray,
    not_sure_below: float = 0.0,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Each condition's result for CLASSIFY on its READY pictures (`prepared`), as `evaluate` describes it."""
    return [
        _scored(c, inputs, classify, labels, not_sure_below, on_result)
        for c, inputs in zip(conditions, ready, strict=True)
    ]


def _prepare(
    condition: Condition, digits: np.ndarray, seed: int, prepare: Callable[[Image.Image], np.ndarray]
) -> Prepared:
    """The model inputs of the digits CONDITION draws that PREPARE reads as a digit, and their indices."""
    inputs, where = [], []
    for i, data in enumerate(render(condition, digits, seed)):
        try:
            inputs.append(prepare(decode_image(data, MAX_PIXELS)))
            where.append(i)
        except PreprocessingError:
            continue
    return (
        np.stack(inputs) if inputs else np.zeros((0, contract.IMAGE_SIZE, contract.IMAGE_SIZE), dtype=np.float32)
    ), where


def _prepare_named(name: str, digits: np.ndarray, seed: int) -> Prepared:
    """_prepare for one of the suite's own conditions, by name (in a worker process: the conditions' renderers are
    closures, which do not pickle)."""
    return _prepare(next(c for c in CONDITIONS if c.name == name), digits, seed, preprocess)


def _scored(
    condition: Condition,
    prepared: Prepared,
    classify: Classifier,
    labels: np.ndarray,
    not_sure_below: float,
    on_result: Callable[[Result], None] | None,
) -> Result:
    inputs, where = prepared
    answers = np.full(len(labels), NO_DIGIT)
    unsure = np.zeros(len(labels), dtype=bool)
    if where:
        logits = classify(inputs.astype(np.float32))
        answers[where] = logits.argmax(axis=1)
        unsure[where] = contract.probabilities(logits).max(axis=1) < not_sure_below
    right = answers == labels if condition.expects_digit else (answers == NO_DIGIT) | unsure
    result = Result(
        condition=condition.name,
        accuracy=round(float(right.mean()), 4),
        refused=round(float((answers == NO_DIGIT).mean()), 4),
        not_sure=round(float(unsure.mean()), 4),
        target=condition.target,
        n=len(labels),
    )
    if on_result is not None:
        on_result(result)
    return result


def onnx_classifier(onnx_bytes: bytes) -> Classifier:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])

    def classify(images: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {contract.INPUT_NAME: images[:, None]})[0])

    return classify


def plot(results: Sequence[Result], title: str) -> bytes:
    """A horizontal bar per condition, its target marked; PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.32 * len(results) + 1.2))
    names = [r.condition for r in results][::-1]
    values = [100 * r.accuracy for r in results][::-1]
    colours = ["tab:green" if r.meets_target else "tab:red" for r in results][::-1]
    ax.barh(names, values, color=colours)
    for y, r in enumerate(results[::-1]):
        ax.plot([100 * r.target] * 2, [y - 0.4, y + 0.4], color="black", linewidth=1)
        ax.text(min(values[y], 99) - 1, y, f"{values[y]:.1f}", va="center", ha="right", fontsize=7, color="white")
    ax.set(xlim=(0, 100), xlabel="accuracy (%) — black tick: target", title=title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def sample(images: np.ndarray, labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """N test digits, the same ones for every model given the same seed: the suite's digits."""
    chosen = np.random.default_rng(seed).choice(len(images), size=min(n, len(images)), replace=False)
    return images[chosen], labels[chosen]


def report(results: Sequence[Result], digits: int, seed: int, not_sure_below: float = 0.0) -> dict[str, Any]:
    """The suite's results as the model's metadata records them (and `invoke promote` compares)."""
    return {
        "digits": digits,
        "seed": seed,
        "preprocessing_version": PREPROCESSING_VERSION,
        "not_sure_below": not_sure_below,
        "conditions": {
            r.condition: {"accuracy": r.accuracy, "refused": r.refused, "not_sure": r.not_sure, "target": r.target}
            for r in results
        },
        "below_target": [r.condition for r in results if not r.meets_target],
        "worst": min(results, key=lambda r: r.accuracy - r.target).condition,
    }


def table(report_: dict[str, Any]) -> str:
    """A Markdown table of a report: condition, accuracy, target."""
    lines = ["| condition | what | accuracy | refused | not sure | target |", "|---|---|---:|---:|---:|---:|"]
    rows = report_["conditions"]
    ordered = [c.name for c in CONDITIONS if c.name in rows] + [n for n in rows if n not in BY_NAME]
    for name in ordered:
        row = rows[name]
        mark = "" if row["accuracy"] >= row["target"] else " ✗"
        what = BY_NAME[name].description if name in BY_NAME else ""
        lines.append(
            f"| {name} | {what} | {100 * row['accuracy']:.1f} %{mark} | {100 * row['refused']:.1f} % "
            f"| {100 * row.get('not_sure', 0.0):.1f} % | {100 * row['target']:.0f} % |"
        )
    return "\n".join(lines)


def score(
    onnx_bytes: bytes,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    digits: int,
    seed: int,
    on_result: Callable[[Result], None] | None = None,
    not_sure_below: float = 0.0,
) -> tuple[list[Result], dict[str, Any]]:
    """Run the suite on a model with DIGITS of the test set's digits (`sample`): the results and their report.
    NOT_SURE_BELOW is the model's own threshold (`contract.not_sure_below` of its metadata)."""
    images, labels = sample(test_images, test_labels, digits, seed)
    classify = onnx_classifier(onnx_bytes)
    results = evaluate(classify, images, labels, seed=seed, on_result=on_result, not_sure_below=not_sure_below)
    return results, report(results, len(images), seed, not_sure_below)
