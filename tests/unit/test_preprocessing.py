import io

import numpy as np
import pytest
from PIL import Image

from app.mnist.preprocessing import EmptyImageError, PreprocessingError, decode_image, preprocess, to_grayscale
from tests.canvas import STYLES, canvas_like


def classify(onnx_session, images: list[np.ndarray]) -> np.ndarray:
    batch = np.stack(images)[:, None].astype(np.float32)
    return onnx_session.run(None, {"image": batch})[0].argmax(axis=1)


def test_output_follows_the_contract(mnist_sample):
    out = preprocess(canvas_like(mnist_sample[0][0], "rgb_dark_on_light"))
    assert out.shape == (28, 28)
    assert out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    ys, xs = np.nonzero(out > 0.2)
    assert ys.max() - ys.min() < 21 and xs.max() - xs.min() < 21
    cy, cx = (np.indices(out.shape) * out).sum(axis=(1, 2)) / out.sum()
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1


@pytest.mark.parametrize("style", STYLES)
def test_canvas_like_digits_keep_97_percent_accuracy(style, mnist_sample, onnx_session):
    images, labels = mnist_sample
    predicted = classify(onnx_session, [preprocess(canvas_like(d, style)) for d in images])
    accuracy = float((predicted == labels).mean())
    assert accuracy >= 0.97, f"{style}: {accuracy:.1%}"


def test_jpeg_upload_round_trip_keeps_accuracy(mnist_sample, onnx_session):
    images, labels = mnist_sample
    decoded = []
    for digit in images[:200]:
        buffer = io.BytesIO()
        canvas_like(digit, "rgb_dark_on_light").save(buffer, format="JPEG", quality=80)
        decoded.append(preprocess(decode_image(buffer.getvalue(), max_pixels=10**6)))
    assert float((classify(onnx_session, decoded) == labels[:200]).mean()) >= 0.97


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize("fill", [0, 255])
def test_blank_images_are_an_error_not_a_guess(mode, fill):
    with pytest.raises(EmptyImageError):
        preprocess(Image.new(mode, (200, 120), (fill,) * len(mode)))


def test_fully_transparent_canvas_is_empty():
    with pytest.raises(EmptyImageError):
        preprocess(Image.new("RGBA", (280, 280), (0, 0, 0, 0)))


def test_arrays_of_floats_and_bytes_are_accepted(mnist_sample):
    digit = mnist_sample[0][3]
    from_bytes = preprocess(digit)
    from_floats = preprocess(digit.astype(np.float32) / 255.0)
    np.testing.assert_allclose(from_bytes, from_floats, atol=1e-2)


def test_light_background_is_inverted():
    image = Image.new("L", (50, 50), 255)
    image.paste(0, (20, 10, 30, 40))
    gray = to_grayscale(image)
    assert gray[0, 0] == 0.0 and gray[20, 25] == 1.0


@pytest.mark.parametrize(
    "array", [np.zeros((4, 4, 2)), np.zeros((2, 2, 2, 2)), np.full((10, 10), np.nan)], ids=["channels", "ndim", "nan"]
)
def test_bad_arrays_are_refused(array):
    with pytest.raises(PreprocessingError):
        preprocess(array)


def test_decode_refuses_non_images_and_other_formats():
    with pytest.raises(PreprocessingError, match="not a PNG or JPEG"):
        decode_image(b"definitely not an image", max_pixels=10**6)
    with pytest.raises(PreprocessingError, match="empty"):
        decode_image(b"", max_pixels=10**6)
    gif = io.BytesIO()
    Image.new("L", (10, 10)).save(gif, format="GIF")
    with pytest.raises(PreprocessingError, match="unsupported image format GIF"):
        decode_image(gif.getvalue(), max_pixels=10**6)


def test_decode_refuses_images_too_large_before_decoding_them():
    png = io.BytesIO()
    Image.new("L", (5000, 5000)).save(png, format="PNG")
    with pytest.raises(PreprocessingError, match="5000x5000"):
        decode_image(png.getvalue(), max_pixels=4096 * 4096)
