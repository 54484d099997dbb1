"""Turn real MNIST digits into images like the ones people draw or upload."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter, ImageOps


def canvas_like(digit: np.ndarray, style: str) -> Image.Image:
    """A 28x28 uint8 MNIST digit upscaled x10 with thicker strokes, rendered in one of several STYLEs."""
    big = Image.fromarray(digit).resize((280, 280), Image.Resampling.BILINEAR).filter(ImageFilter.MaxFilter(9))
    if style == "rgba_transparent":  # a canvas with no background: ink only in the alpha channel
        image = Image.new("RGBA", big.size, (0, 0, 0, 0))
        image.putalpha(big)
        return image
    if style == "rgb_dark_on_light":
        return ImageOps.invert(big).convert("RGB")
    if style == "rgba_opaque_dark_on_light":
        return ImageOps.invert(big).convert("RGBA")
    if style == "gray_light_on_dark_offcentre":  # not square, digit off to one side
        image = Image.new("L", (420, 300), 0)
        image.paste(big, (130, 10))
        return image
    raise ValueError(style)


STYLES = ["rgba_transparent", "rgb_dark_on_light", "rgba_opaque_dark_on_light", "gray_light_on_dark_offcentre"]
