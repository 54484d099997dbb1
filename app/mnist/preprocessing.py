"""Turn any drawn or uploaded digit into the model's input (see `app.mnist.contract`).

The steps are MNIST's own: grayscale, ink made white on black, crop to the ink, scale to fit the 20x20
box keeping the aspect ratio, then place in 28x28 so the centre of mass sits at the centre.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.mnist.contract import DIGIT_BOX, IMAGE_SIZE

# Below this contrast (on a 0..1 scale) between ink and background the image holds no digit.
MIN_CONTRAST = 0.15
# Pixels darker than this fraction of the ink's peak count as background when cropping.
INK_THRESHOLD = 0.2


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
    """A float array in [0, 1] where 1 is the ink, whatever the mode and polarity of the input.

    With a partly transparent alpha channel (a canvas with no background), the alpha is the ink.
    """
    if isinstance(image, np.ndarray):
        image = _array_to_image(image)
    image = ImageOps.exif_transpose(image)
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        if alpha.min() < 1.0:
            return alpha
        image = rgba.convert("RGB")
    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
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
    """The model input for one digit: float32 (28, 28) in [0, 1]. Raises EmptyImageError when there is no ink."""
    ink = to_grayscale(image)
    background = float(np.median(np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])))
    ink = np.clip(ink - background, 0.0, None)
    peak = float(ink.max(initial=0.0))
    if peak < MIN_CONTRAST:
        raise EmptyImageError("the image holds no digit (no ink stands out from the background)")
    ink /= peak

    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
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
