"""The page's logic under Streamlit's AppTest, with the backend faked at the HTTP layer by respx."""

from __future__ import annotations

import sys

import httpx
import numpy as np
import pytest
import respx
from streamlit.testing.v1 import AppTest

from app.frontend.drawing import canvas_png
from tests.servers import ROOT

BACKEND = "http://backend.test:8000"
PAGE = str(ROOT / "app" / "frontend" / "app.py")
ANSWER = {
    "digit": 3,
    "probabilities": [0.0, 0.0, 0.05, 0.9, 0.05, 0, 0, 0, 0, 0],
    "sure": True,
    "model_version": "abc123" * 5,
    "id": "f" * 32,
    "input": [[0] * 28] * 10 + [[0] * 10 + [255] * 8 + [0] * 10] * 8 + [[0] * 28] * 10,
}


@pytest.fixture
def page(monkeypatch) -> AppTest:
    monkeypatch.setenv("MNIST_BACKEND_URL", BACKEND + "/")
    monkeypatch.setenv("MNIST_BACKEND_TIMEOUT", "1")
    # AppTest runs the page as sys.modules["__main__"] and leaves it there: a process spawned later in the session
    # (the robustness suite's workers) would run the page again as its main module, and die.
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    return AppTest.from_file(PAGE, default_timeout=30)


def test_page_renders_without_calling_the_backend(page):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route(host="backend.test")
        page.run()
    assert not page.exception
    assert page.title[0].value == "Draw a digit"
    assert not route.called


def test_predict_with_an_empty_canvas_sends_nothing(page):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route(host="backend.test")
        page.run()
        page.button[0].click().run()
    assert not route.called
    assert "Draw a digit on the canvas first" in page.info[0].value


def retry_against(page: AppTest, **backend_answer) -> respx.Route:
    """Run the page as after a press on Retry, with the backend's predict endpoint answering as given."""
    with respx.mock as mock:
        route = mock.post(f"{BACKEND}/api/v1/predict/image").mock(**backend_answer)
        page.session_state["pending"] = (b"\x89PNG", "canvas.png", "image/png", "canvas")
        page.session_state["retrying"] = True
        page.run()
    return route


def test_backend_down_shows_a_message_and_a_retry(page):
    retry_against(page, side_effect=httpx.ConnectError("refused"))
    assert not page.exception
    assert "cannot be reached" in page.error[0].value
    assert any(button.label == "Retry" for button in page.button)


def test_retry_resends_and_shows_the_answer_built_from_the_base_url(page):
    route = retry_against(page, return_value=httpx.Response(200, json=ANSWER))
    assert route.call_count == 1
    assert b'name="file"; filename="canvas.png"' in route.calls[0].request.content
    assert page.header[0].value == "Prediction: 3"
    assert page.metric[0].value == "90.0%"
    assert "Top three: 3 (90.0%), 2 (5.0%), 4 (5.0%)" in [caption.value for caption in page.caption]
    assert page.table[0].value["digit"].tolist() == ["3"]


def test_an_answer_the_model_is_not_sure_of_says_so(page):
    retry_against(page, return_value=httpx.Response(200, json={**ANSWER, "sure": False}))
    assert page.header[0].value == "Prediction: 3 (not sure)"
    assert "looks most like a 3" in page.warning[0].value
    assert page.table[0].value["digit"].tolist() == ["3?"]


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(422, json={"detail": "the image holds no digit"}), "the image holds no digit"),
        (httpx.Response(500, text="boom"), "(500)"),
        (httpx.Response(200, text="not json"), "not JSON"),
        (httpx.Response(200, json={"digit": 1}), "missing fields"),
    ],
    ids=["refused", "server_error", "not_json", "missing_fields"],
)
def test_backend_errors_become_messages_not_tracebacks(page, response, message):
    retry_against(page, return_value=response)
    assert not page.exception
    assert message in page.error[0].value


def test_slow_backend_times_out_with_a_message(page):
    retry_against(page, side_effect=httpx.ReadTimeout("slow"))
    assert "did not answer in time" in page.error[0].value


def test_canvas_png_is_none_for_an_empty_canvas_and_png_for_a_drawing():
    blank = np.zeros((280, 280, 4), dtype=np.uint8)
    assert canvas_png(blank) is None
    black = blank.copy()
    black[:, :, 3] = 255
    assert canvas_png(black) is None
    drawn = black.copy()
    drawn[100:180, 130:150, :3] = 255
    png = canvas_png(drawn)
    assert png is not None and png.startswith(b"\x89PNG")


def test_the_answer_shows_the_models_input_and_sends_a_correction(page):
    retry_against(page, return_value=httpx.Response(200, json=ANSWER))
    (seen,) = page.get("image")  # the 28x28 input, shown beside the answer
    shown = seen.proto.imgs[0]
    assert shown.caption == "What the model saw (28×28)" and "read as a 3" in shown.alt
    assert shown.url.endswith(".png")  # pixels as they are: a JPEG would blur the 28x28 squares
    choice = page.selectbox[0]
    assert choice.label == "Wrong? The right digit is …" and 3 not in choice.options
    with respx.mock as mock:
        route = mock.post(f"{BACKEND}/api/v1/feedback").mock(
            return_value=httpx.Response(201, json={"prediction_id": "f" * 32})
        )
        choice.set_value(8)
        page.button(key="FormSubmitter:correction-Send correction").click().run()
    assert route.call_count == 1
    assert route.calls[0].request.content == b'{"prediction_id":"' + b"f" * 32 + b'","digit":8}'
    assert "recorded as a 8" in page.success[0].value
    assert not page.selectbox  # one correction per answer


def test_a_refused_correction_says_why_and_keeps_the_choice(page):
    retry_against(page, return_value=httpx.Response(200, json=ANSWER))
    with respx.mock as mock:
        mock.post(f"{BACKEND}/api/v1/feedback").mock(
            return_value=httpx.Response(404, json={"detail": "no prediction 'fff' is kept: unknown"})
        )
        page.selectbox[0].set_value(5)
        page.button(key="FormSubmitter:correction-Send correction").click().run()
    assert "(404): no prediction 'fff' is kept" in page.error[0].value
    assert page.selectbox[0].value == 5


def test_a_backend_that_keeps_no_feedback_offers_no_correction(page):
    retry_against(page, return_value=httpx.Response(200, json={**ANSWER, "id": None}))
    assert not page.selectbox
    assert "This backend keeps no corrections." in [caption.value for caption in page.caption]
