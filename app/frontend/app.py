"""Draw a digit, get the model's answer: `streamlit run app/frontend/app.py`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `streamlit run` puts only this folder on the path

from app.frontend import client  # noqa: E402
from app.frontend.drawing import canvas_png  # noqa: E402

HISTORY = 5
CANVAS = 280  # px, square
PREVIEW = 112  # px: the model's 28x28 input shown 4x, one square per pixel

st.set_page_config(page_title="MNIST digit classifier", page_icon="✏️", layout="centered")
# The canvas's toolbar (undo, redo, clear) floats 2.65rem above the canvas when the pointer is over it: the
# drawing's container keeps that room free, so it covers nothing (the title sat there before). Captions are darker
# than Streamlit's (a grey at 60 % opacity: 3.9:1 on white, where WCAG AA asks 4.5:1, axe-core's color-contrast).
st.html(
    "<style>.st-key-drawing { padding-top: 3rem; }"
    " [data-testid='stCaptionContainer'], [data-testid='stCaptionContainer'] code,"
    " [data-testid='stImageCaption'] { color: #5c5b57; opacity: 1; }</style>"
)
st.title("Draw a digit")
state = st.session_state
state.setdefault("history", [])
state.setdefault("canvas_generation", 0)
state.setdefault("latest", None)

with st.sidebar:
    pen = st.slider(
        "Pen width, % of the canvas", min_value=3, max_value=15, value=8, help="MNIST's strokes are about 8 %"
    )
    st.caption(f"Backend: `{client.backend_url()}`")
stroke = round(CANVAS * pen / 100)


def draw() -> bytes | None:
    from streamlit_drawable_canvas import st_canvas

    result = st_canvas(
        stroke_width=stroke,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=CANVAS,
        width=CANVAS,
        drawing_mode="freedraw",
        return_image_data=True,
        key=f"canvas-{state.canvas_generation}",
    )
    objects = (result.json_data or {}).get("objects") or []
    return canvas_png(result.image_data) if objects else None


def retry() -> None:
    state.retrying = True


def predict(image: bytes, filename: str, content_type: str, source: str) -> None:
    try:
        prediction = client.predict_image(image, filename, content_type)
    except client.BackendError as exc:
        state.pending = (image, filename, content_type, source)
        state.latest = None
        st.error(f"{exc} Check that the backend is running, then retry.", icon="⚠️")
        st.button("Retry", on_click=retry)
        return
    state.pending = None
    state.latest = {"prediction": prediction, "corrected": None}
    state.history = [(source, prediction), *state.history][:HISTORY]


def preview(seen: tuple[tuple[int, ...], ...]) -> Image.Image:
    return Image.fromarray(np.array(seen, dtype=np.uint8)).resize((PREVIEW, PREVIEW), Image.Resampling.NEAREST)


def correction(latest: dict[str, Any]) -> None:
    """ "Wrong? The right digit is …": sent to the backend, which keeps it for the next training."""
    prediction: client.Prediction = latest["prediction"]
    if prediction.id is None:
        st.caption("This backend keeps no corrections.")
        return
    if latest["corrected"] is not None:
        st.success(f"Thank you: recorded as a {latest['corrected']}, for the next training.")
        return
    with st.form("correction", border=False):
        right = st.selectbox(
            "Wrong? The right digit is …",
            [digit for digit in range(10) if digit != prediction.digit],
            index=None,
            placeholder="the digit you drew",
        )
        if st.form_submit_button("Send correction"):
            if right is None:
                st.info("Choose the digit you drew, then send.")
                return
            try:
                client.send_correction(prediction.id, right)
            except client.BackendError as exc:
                st.error(str(exc), icon="⚠️")
                return
            latest["corrected"] = right
            st.rerun()


def answer(latest: dict[str, Any]) -> None:
    prediction: client.Prediction = latest["prediction"]
    if prediction.sure:
        st.header(f"Prediction: {prediction.digit}")
    else:
        st.header(f"Prediction: {prediction.digit} (not sure)")
        st.warning(f"The model is not sure: it looks most like a {prediction.digit}. Try drawing it again.")
    confidence, seen = st.columns(2)
    confidence.metric("Confidence", f"{prediction.confidence:.1%}")
    if prediction.seen:
        seen.image(
            preview(prediction.seen),
            caption="What the model saw (28×28)",
            width=PREVIEW,
            output_format="PNG",
            alt=f"The 28 by 28 image the model received, read as a {prediction.digit}",
        )
    st.caption("Top three: " + ", ".join(f"{digit} ({p:.1%})" for digit, p in prediction.top(3)))
    correction(latest)
    st.caption(f"Model version `{prediction.model_version[:16]}`")


drawing_column, answer_column = st.columns(2, gap="large")
with drawing_column:
    with st.container(key="drawing"):
        drawing = draw()
    left, right = st.columns(2)
    predict_clicked = left.button("Predict", type="primary", use_container_width=True)
    if right.button("Clear", use_container_width=True):
        state.canvas_generation += 1
        state.latest = None
        st.rerun()

upload = st.file_uploader("…or upload a picture of a digit", type=["png", "jpg", "jpeg"])

with answer_column:
    if predict_clicked:
        if drawing is None:
            st.info("Draw a digit on the canvas first.")
        else:
            predict(drawing, "canvas.png", "image/png", "canvas")
    elif state.pop("retrying", False) and state.get("pending"):
        predict(*state.pending)
    elif upload is not None and state.get("uploaded") != upload.file_id:
        state.uploaded = upload.file_id  # once per file: a later rerun (a correction) does not predict it again
        predict(upload.getvalue(), upload.name, upload.type or "image/png", upload.name)
    if state.latest is not None:
        answer(state.latest)

if state.latest is not None:
    st.bar_chart(
        {"probability": state.latest["prediction"].probabilities}, x_label="digit", y_label="probability", height=200
    )
if state.history:
    st.divider()
    st.caption("This visit's last predictions")
    st.table(
        [
            {"source": source, "digit": str(p.digit) if p.sure else f"{p.digit}?", "confidence": f"{p.confidence:.1%}"}
            for source, p in state.history
        ]
    )
