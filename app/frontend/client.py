"""The frontend's only way to the backend: its BASE url, with the endpoint paths built here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

PREDICT_IMAGE = "/api/v1/predict/image"
FEEDBACK = "/api/v1/feedback"
MODEL_INFO = "/api/v1/model"


class BackendError(RuntimeError):
    """Something a person can read: what went wrong talking to the backend."""


@dataclass(frozen=True)
class Prediction:
    digit: int
    probabilities: list[float]
    model_version: str
    sure: bool = True
    id: str | None = None  # what a correction refers to; None where the backend keeps no feedback
    seen: tuple[tuple[int, ...], ...] = ()  # the 28x28 image the model received, 0-255

    @property
    def confidence(self) -> float:
        return self.probabilities[self.digit]

    def top(self, n: int = 3) -> list[tuple[int, float]]:
        """The N most probable digits, most probable first."""
        return sorted(enumerate(self.probabilities), key=lambda pair: -pair[1])[:n]


def backend_url() -> str:
    """The backend's base URL from MNIST_BACKEND_URL (e.g. http://backend:8000), without a trailing slash."""
    url = os.environ.get("MNIST_BACKEND_URL", "http://127.0.0.1:8000").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise BackendError(f"MNIST_BACKEND_URL must be an http(s) base URL, got {url!r}")
    return url


def timeout() -> httpx.Timeout:
    return httpx.Timeout(float(os.environ.get("MNIST_BACKEND_TIMEOUT", "5")), connect=2.0)


def _request(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    base = backend_url()
    try:
        response = httpx.request(method, f"{base}{path}", timeout=timeout(), **kwargs)
    except httpx.TimeoutException as exc:
        raise BackendError(f"The backend at {base} did not answer in time.") from exc
    except httpx.TransportError as exc:
        raise BackendError(f"The backend at {base} cannot be reached.") from exc
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = None
        reason = detail if isinstance(detail, str) else response.reason_phrase
        raise BackendError(f"The backend refused the request ({response.status_code}): {reason}")
    try:
        body: dict[str, Any] = response.json()
    except ValueError as exc:
        raise BackendError("The backend sent an answer that is not JSON.") from exc
    return body


def predict_image(png: bytes, filename: str = "digit.png", content_type: str = "image/png") -> Prediction:
    body = _request("POST", PREDICT_IMAGE, files={"file": (filename, png, content_type)})
    try:
        return Prediction(
            int(body["digit"]),
            [float(p) for p in body["probabilities"]],
            str(body["model_version"]),
            bool(body.get("sure", True)),
            body.get("id"),
            tuple(tuple(int(value) for value in row) for row in body.get("input") or ()),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError("The backend's answer is missing fields.") from exc


def send_correction(prediction_id: str, digit: int) -> None:
    """Tell the backend the right digit for one of its predictions (refusals come back as BackendError)."""
    _request("POST", FEEDBACK, json={"prediction_id": prediction_id, "digit": digit})


def model_info() -> dict[str, Any]:
    return _request("GET", MODEL_INFO)
