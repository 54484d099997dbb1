"""Draw a digit, get the model's answer: `streamlit run app/frontend/app.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `streamlit run` puts only this folder on the path

from app.frontend import client  # noqa: E402
from app.frontend.drawing import canvas_png  # noqa: E402

HISTORY = 5

st.set_page_config(page_title="MNIST digit classifier", page_icon="✏️", layout="centered")
st.title("Draw a digit")
state = st.session_state
state.setdefault("history", [])
state.setdefault("canvas_generation", 0)

with st.sidebar:
    stroke = st.slider("Stroke width", min_value=8, max_value=40, value=22, step=2)
    st.caption(f"Backend: `{client.backend_url()}`")


def draw() -> bytes | None:
    from streamlit_drawable_canvas import st_canvas

    result = st_canvas(
        stroke_width=stroke,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=280,
        width=280,
        drawing_mode="freedraw",
        return_image_data=True,
        key=f"canvas-{state.canvas_generation}",
    )
    objects = (result.json_data or {}).get("objects") or []
    return canvas_png(result.image_data) if objects else None


drawing = draw()
left, right = st.columns(2)
predict_clicked = left.button("Predict", type="primary", use_container_width=True)
if right.button("Clear", use_container_width=True):
    state.canvas_generation += 1
    st.rerun()

upload = st.file_uploader("…or upload a picture of a digit", type=["png", "jpg", "jpeg"])


def retry() -> None:
    state.retrying = True


def predict(image: bytes, filename: str, content_type: str, source: str) -> None:
    try:
        prediction = client.predict_image(image, filename, content_type)
    except client.BackendError as exc:
        state.pending = (image, filename, content_type, source)
        st.error(f"{exc} Check that the backend is running, then retry.", icon="⚠️")
        st.button("Retry", on_click=retry)
        return
    state.pending = None
    state.history = [(source, prediction), *state.history][:HISTORY]
    if prediction.sure:
        st.subheader(f"Prediction: {prediction.digit}")
    else:
        st.subheader(f"Prediction: {prediction.digit} (not sure)")
        st.warning(f"The model is not sure: it looks most like a {prediction.digit}. Try drawing it again.")
    st.metric("Confidence", f"{prediction.confidence:.1%}")
    st.caption("Top three: " + ", ".join(f"{digit} ({p:.1%})" for digit, p in prediction.top(3)))
    st.bar_chart({"probability": prediction.probabilities}, x_label="digit", y_label="probability")
    st.caption(f"Model version `{prediction.model_version[:16]}`")


if predict_clicked:
    if drawing is None:
        st.info("Draw a digit on the canvas first.")
    else:
        predict(drawing, "canvas.png", "image/png", "canvas")
elif state.pop("retrying", False) and state.get("pending"):
    predict(*state.pending)
elif upload is not None:
    predict(upload.getvalue(), upload.name, upload.type or "image/png", upload.name)

if state.history:
    st.divider()
    st.caption("This visit's last predictions")
    st.table(
        [
            {"source": source, "digit": str(p.digit) if p.sure else f"{p.digit}?", "confidence": f"{p.confidence:.1%}"}
            for source, p in state.history
        ]
    )
