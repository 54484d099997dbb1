from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, UploadFile

from app.backend.api.deps import ClassifierDep, SettingsDep
from app.backend.schemas import (
    BatchPredictRequest,
    BatchPredictResponse,
    ErrorResponse,
    PredictRequest,
    PredictResponse,
    ValidationErrorResponse,
)
from app.mnist.preprocessing import (
    EmptyImageError,
    ImageTooLargeError,
    PreprocessingError,
    UnsupportedImageError,
    decode_image,
    preprocess,
)

router = APIRouter(prefix="/api/v1/predict", tags=["predict"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body could not be parsed (not JSON, or not UTF-8)"},
    422: {"model": ValidationErrorResponse, "description": "The body or the image fails validation"},
    413: {"model": ErrorResponse, "description": "Body, file or image dimensions over the limit"},
    503: {"model": ErrorResponse, "description": "The model is not loaded"},
}


def _as_array(image: list[float] | list[list[float]]) -> np.ndarray:
    return np.asarray(image, dtype=np.float32).reshape(28, 28)


@router.post("", response_model=PredictResponse, responses=ERRORS)
async def predict(body: PredictRequest, classifier: ClassifierDep) -> PredictResponse:
    """Classify one digit already in MNIST form (784 values, or 28 rows of 28)."""
    prediction = classifier.predict(_as_array(body.image)[None])[0]
    return PredictResponse(
        digit=prediction.digit, probabilities=prediction.probabilities, model_version=classifier.version
    )


@router.post(
    "/batch",
    response_model=BatchPredictResponse,
    responses=ERRORS,
)
def predict_batch(body: BatchPredictRequest, classifier: ClassifierDep, settings: SettingsDep) -> BatchPredictResponse:
    """Classify several digits in one call (up to the configured batch limit)."""
    if len(body.images) > settings.max_batch:
        raise HTTPException(422, f"{len(body.images)} images in one batch; the limit is {settings.max_batch}")
    predictions = classifier.predict(np.stack([_as_array(image) for image in body.images]))
    return BatchPredictResponse(
        predictions=[
            PredictResponse(digit=p.digit, probabilities=p.probabilities, model_version=classifier.version)
            for p in predictions
        ],
        model_version=classifier.version,
    )


@router.post(
    "/image",
    response_model=PredictResponse,
    responses={
        **ERRORS,
        415: {"model": ErrorResponse, "description": "Not a PNG or JPEG image"},
    },
)
def predict_image(file: UploadFile, classifier: ClassifierDep, settings: SettingsDep) -> PredictResponse:
    """Classify a PNG or JPEG picture of a digit, of any size, through the shared preprocessing."""
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"the file is larger than the limit of {settings.max_upload_bytes} bytes")
    try:
        image = preprocess(decode_image(data, settings.max_image_pixels))
    except UnsupportedImageError as exc:
        raise HTTPException(415, str(exc)) from exc
    except ImageTooLargeError as exc:
        raise HTTPException(413, str(exc)) from exc
    except (EmptyImageError, PreprocessingError) as exc:
        raise HTTPException(422, str(exc)) from exc
    prediction = classifier.predict(image[None])[0]
    return PredictResponse(
        digit=prediction.digit, probabilities=prediction.probabilities, model_version=classifier.version
    )
