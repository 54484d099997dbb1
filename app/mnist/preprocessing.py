"""Turn any drawn or uploaded digit into the model's input (see `app.mnist.contract`).

The steps are MNIST's own — grayscale, ink made white on black, crop to the ink, scale to fit the 20x20 box keeping
the aspect ratio, then place in 28x28 so the centre of mass sits at the centre — after what a person means is read
from the picture: transparency is transparency (not ink), any bit depth or palette, the paper's uneven light
removed, and the digit is the largest piece of ink (stray marks and specks dropped; a lone dot is a click, no digit).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from app.mnist.contract import DIGIT_BOX, IMAGE_SIZE

# Recorded in every model's metadata: a model is scored, and promoted, with the preprocessing it was trained for.
# 1: crop to every mark, alpha as ink. 2: transparency, bit depths, background removal, the largest ink component.
VERSION = 2

# Below this contrast (on a 0..1 scale) between ink and background the image holds no digit.
MIN_CONTRAST = 0.15
# Pixels darker than this fraction of the ink's peak count as background when finding the digit.
INK_THRESHOLD = 0.25
# A piece of ink beside the largest one belongs to the digit when it holds this share of the largest one's ink and
# lies within this share of its size (a "5" whose bar was drawn apart, a broken stroke); smaller ones are stray.
KEEP_SHARE = 0.2
KEEP_WITHIN = 0.35
# A digit spans at least this share of the picture's shorter side; less is a speck.
MIN_DIGIT_SHARE = 0.04
# A single piece of ink this round and this filled, with no hole, and smaller than this share of the picture's
# shorter side is a dot (a click: the canvas's widest pen is a seventh of it), not a digit.
DOT_ROUNDNESS = 0.8
DOT_FILL = 0.7
DOT_SHARE = 0.2


class PreprocessingError(ValueError):
    """The input cannot be turned into a digit; the message says why."""


class EmptyImageError(PreprocessingError):
    """The image holds no ink."""


class UnsupportedImageError(PreprocessingError):
    """The bytes are not a PNG or JPEG image."""


class ImageTooLargeError(PreprocessingError):
    """The image would take too much memory once decoded."""


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode PNG/JPEG bytes, refusing anything that is not an image or would be too large once decoded."""
    if not data:  # the media type may be right; the content is missing: invalid (422), not unsupported (415)
        raise PreprocessingError("the file is empty")
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as exc:
        raise UnsupportedImageError("the file is not a PNG or JPEG image") from exc
    if image.format not in {"PNG", "JPEG"}:
        raise UnsupportedImageError(f"unsupported image format {image.format}; send PNG or JPEG")
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(f"image is {width}x{height} pixels, more than the limit of {max_pixels}")
    try:
        image.load()
    except (OSError, Image.DecompressionBombError) as exc:
        raise UnsupportedImageError(f"the image could not be decoded: {exc}") from exc
    return image


def to_grayscale(image: Image.Image | np.ndarray) -> np.ndarray:
    """A float array in [0, 1] where 1 is the ink, whatever the mode, bit depth and polarity of the input.

    Alpha is transparency: a transparent pixel shows the picture's background. Only where every visible pixel has
    one colour (a canvas's strokes on nothing) is the alpha the ink itself.
    """
    if isinstance(image, np.ndarray):
        image = _array_to_image(image)
    image = ImageOps.exif_transpose(image)
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        visible = gray[alpha > 0.5]
        if alpha.min() < 1.0 and visible.size:
            low, high = np.percentile(visible, [1, 99])
            if high - low < MIN_CONTRAST:  # one colour: the strokes' coverage is the ink
                return alpha
            background = float(np.median(visible))  # ink is the smaller part of what shows
            gray = gray * alpha + background * (1.0 - alpha)
    elif image.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        values = np.asarray(image, dtype=np.float32)
        gray = values / (65535.0 if values.max(initial=0) > 255 else 255.0)
    else:
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    gray = np.clip(gray, 0.0, 1.0)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        gray = 1.0 - gray
    return gray


def _array_to_image(array: np.ndarray) -> Image.Image:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise PreprocessingError(f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise PreprocessingError("the array holds NaN or infinite values")
    if array.dtype != np.uint8:
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(array)


def preprocess(image: Image.Image | np.ndarray) -> np.ndarray:
    """The model input for one digit: float32 (28, 28) in [0, 1]. Raises EmptyImageError when there is no digit.

    The background is estimated across the picture (a photo lit from one side is darker on that side) and taken
    out; the digit is the largest ink component with the pieces of comparable size beside it, so a stray dot, a
    tick or a speck of noise is left out; ink too small or too round to be a digit (a click) is no digit.
    """
    smooth = _denoise(_remove_background(to_grayscale(image)))
    peak = float(smooth.max(initial=0.0))
    if peak < MIN_CONTRAST:
        raise EmptyImageError("the image holds no digit (no ink stands out from the background)")
    smooth = np.clip(smooth / peak, 0.0, 1.0)
    digit = _digit_mask(smooth)
    ink = np.where(digit, smooth, 0.0).astype(np.float32)

    rows = np.flatnonzero(digit.any(axis=1))
    cols = np.flatnonzero(digit.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    height, width = ink.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    box = np.asarray(Image.fromarray(ink, mode="F").resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    box = np.clip(box, 0.0, 1.0)

    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    top, left = (IMAGE_SIZE - box.shape[0]) // 2, (IMAGE_SIZE - box.shape[1]) // 2
    out[top : top + box.shape[0], left : left + box.shape[1]] = box
    return _centre_by_mass(out)


def _remove_background(ink: np.ndarray) -> np.ndarray:
    """INK less the background, fitted as a smooth surface (a quadratic) to the pixels that are not ink.

    Dark ink on paper is a reflectance: where the light is weaker the ink and the paper are both darker, so what is
    left is divided by the light the paper gets (1 - background).
    """
    small = np.asarray(Image.fromarray(ink, mode="F").resize(_fit_size(ink.shape), Image.Resampling.BOX))
    terms = _quadratic_terms(small.shape)
    values = small.ravel()
    chosen = values <= np.percentile(values, 50)
    for _ in range(4):
        coef, *_ = np.linalg.lstsq(terms[chosen], values[chosen], rcond=None)
        residual = values - terms @ coef
        spread = max(float(residual[chosen].std()), 0.02)
        chosen = residual <= 2.5 * spread
    surface = (_quadratic_terms(ink.shape) @ coef).reshape(ink.shape)
    if float(np.ptp(surface)) < 0.05:  # a flat background: one level, no division
        return np.clip(ink - float(np.median(values[chosen])), 0.0, None)
    surface = np.clip(surface, 0.0, 0.95)
    return np.clip((ink - surface) / (1.0 - surface), 0.0, None).astype(np.float32)


def _fit_size(shape: tuple[int, ...]) -> tuple[int, int]:
    height, width = shape
    scale = min(1.0, 64 / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _quadratic_terms(shape: tuple[int, ...]) -> np.ndarray:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    y = (ys.ravel() / max(shape[0] - 1, 1) - 0.5).astype(np.float32)
    x = (xs.ravel() / max(shape[1] - 1, 1) - 0.5).astype(np.float32)
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def _denoise(ink: np.ndarray) -> np.ndarray:
    """A median filter sized to the picture (none on MNIST's 28 px, 3 px on a 280 px canvas): specks go, strokes
    stay."""
    size = min(ink.shape) // 90
    if size < 2:
        return ink
    return np.asarray(ndimage.median_filter(ink, size=size | 1), dtype=np.float32)


def _digit_mask(ink: np.ndarray) -> np.ndarray:
    """The pixels of the digit: the largest ink component (by ink), and the components beside it that hold a fair
    share of its ink. Raises EmptyImageError when that is too small or too round to be a digit."""
    labels, count = ndimage.label(ink > INK_THRESHOLD, structure=np.ones((3, 3)))
    if count == 0:
        raise EmptyImageError("the image holds no digit (no ink stands out from the background)")
    index = np.arange(1, count + 1)
    mass = np.asarray(ndimage.sum_labels(ink, labels, index))
    boxes = ndimage.find_objects(labels)
    largest = int(np.argmax(mass))
    main = boxes[largest]
    reach = KEEP_WITHIN * max(main[0].stop - main[0].start, main[1].stop - main[1].start)
    kept = [largest]
    for i, box in enumerate(boxes):
        if i != largest and mass[i] >= KEEP_SHARE * mass[largest] and _gap(box, main) <= reach:
            kept.append(i)
    mask = np.isin(labels, index[kept])
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    extent = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    if extent < MIN_DIGIT_SHARE * min(ink.shape):
        raise EmptyImageError("the image holds no digit (the only ink is a speck)")
    dot = _is_a_dot(mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    if len(kept) == 1 and extent < DOT_SHARE * min(ink.shape) and dot:
        raise EmptyImageError("the image holds no digit (the only ink is a dot: a click, not a digit)")
    return np.asarray(ndimage.binary_dilation(mask, iterations=2) & (ink > 0.02))


def _gap(a: tuple[slice, slice], b: tuple[slice, slice]) -> int:
    """Pixels between two boxes (0 when they touch or overlap)."""
    dy = max(0, a[0].start - b[0].stop, b[0].start - a[0].stop)
    dx = max(0, a[1].start - b[1].stop, b[1].start - a[1].stop)
    return max(dy, dx)


def _is_a_dot(mask: np.ndarray) -> bool:
    """Round, filled and without a hole: what a click or a tap leaves."""
    height, width = mask.shape
    fill = float(mask.mean())
    holes = int(ndimage.binary_fill_holes(mask).sum() - mask.sum())
    return min(height, width) / max(height, width) >= DOT_ROUNDNESS and fill >= DOT_FILL and holes == 0


def _centre_by_mass(image: np.ndarray) -> np.ndarray:
    total = float(image.sum())
    ys, xs = np.indices(image.shape)
    cy, cx = float((ys * image).sum()) / total, float((xs * image).sum()) / total
    dy, dx = round((IMAGE_SIZE - 1) / 2 - cy), round((IMAGE_SIZE - 1) / 2 - cx)
    shifted = np.zeros_like(image)
    src_y = slice(max(0, -dy), IMAGE_SIZE - max(0, dy))
    dst_y = slice(max(0, dy), IMAGE_SIZE - max(0, -dy))
    src_x = slice(max(0, -dx), IMAGE_SIZE - max(0, dx))
    dst_x = slice(max(0, dx), IMAGE_SIZE - max(0, -dx))
    shifted[dst_y, dst_x] = image[src_y, src_x]
    return shifted
