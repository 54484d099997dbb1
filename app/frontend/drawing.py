"""What the canvas gives, turned into what the backend takes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def canvas_png(image_data: np.ndarray | None) -> bytes | None:
    """PNG bytes of the drawing, or None when nothing is drawn (a transparent or single-colour canvas)."""
    if image_data is None or image_data.size == 0:
        return None
    pixels = image_data.astype(np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 4:
        raise ValueError(f"expected an (H, W, 4) RGBA canvas, got shape {pixels.shape}")
    alpha = pixels[:, :, 3]
    if not alpha.any():
        return None
    opaque = pixels[alpha > 0][:, :3]
    if alpha.all() and (opaque == opaque[0]).all():
        return None
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGBA").save(buffer, format="PNG")
    return buffer.getvalue()
