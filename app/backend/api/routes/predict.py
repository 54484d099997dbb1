from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import simdjson
from fastapi import APIRouter, HTTPException, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from app.backend import metrics
from app.backend.api.deps import ClassifierDep, FeedbackDep, SettingsDep, loaded_classifier
from app.backend.core.config import Settings
from app.backend.feedback.store import from_bytes, to_bytes
from app.backend.schemas import (
    BatchPredictRequest,
    BatchPredictResponse,
    ErrorResponse,
    ImagePredictResponse,
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


def publish_limits(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The OpenAPI schema with the limits this server enforces, from its settings (the one place they are set)."""
    batch = schema["components"]["schemas"]["BatchPredictRequest"]["properties"]["images"]
    batch["maxItems"] = settings.max_batch
    batch["description"] = f"1 to {settings.max_batch} images (the server's MNIST_MAX_BATCH)"
    upload = schema["paths"]["/api/v1/predict/image"]["post"]["requestBody"]["content"]["multipart/form-data"]
    body = schema["components"]["schemas"][upload["schema"]["$ref"].rsplit("/", 1)[-1]]
    body["properties"]["file"]["minLength"] = 1
    body["properties"]["file"]["description"] = (
        f"A PNG or JPEG picture, not empty, at most {settings.max_upload_bytes} bytes (413 above)"
    )
    return schema


def _as_array(image: list[float] | list[list[float]]) -> np.ndarray:
    return np.asarray(image, dtype=np.float32).reshape(28, 28)


def _well_formed_image(raw: bytes) -> np.ndarray | None:
    """The image of a body in the usual form — {"image": [784 numbers]} or 28 rows of 28, every number in [0, 1] —
    as float32 (28, 28); None for any other body. simdjson writes the numbers straight into one buffer, so no
    Python float is made per pixel (orjson + numpy took 46 µs a body, this takes 17)."""
    try:
        document = simdjson.Parser().parse(raw)
        if type(document) is not simdjson.Object or len(document) != 1:
            return None
        pixels = document.get("image")
        if type(pixels) is not simdjson.Array:
            return None
        # The one key is "image", and as_buffer below refuses anything but numbers: so the body's "[" are exactly
        # the image's arrays, one for a flat image, 29 for 28 rows with nothing nested deeper.
        arrays = raw.count(b"[")
        flat = len(pixels) == 784 and arrays == 1
        square = (
            len(pixels) == 28 and arrays == 29 and all(type(row) is simdjson.Array and len(row) == 28 for row in pixels)
        )
        if not (flat or square):
            return None
        image = np.frombuffer(pixels.as_buffer(of_type="d"), dtype=np.float64)
    except (ValueError, TypeError, RuntimeError):  # not JSON, too deep, a number out of range, not all numbers
        return None
    if image.size == 784 and 0.0 <= image.min() and image.max() <= 1.0:
        return image.astype(np.float32).reshape(28, 28)
    return None


def parse_predict_request(raw: bytes) -> np.ndarray:
    """The image in the body of POST /predict as float32 (28, 28), under the contract PredictRequest states.

    A body in the usual form takes the fast path above. Anything else (NaN, a missing or extra field, a wrong
    shape, a value out of range, numbers as strings, not JSON at all) is validated by pydantic against
    PredictRequest, which accepts exactly what /docs shows and names every problem.
    """
    image = _well_formed_image(raw)
    if image is not None:
        return image
    try:
        body = PredictRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None
    return _as_array(body.image)


@router.post(
    "",
    response_model=PredictResponse,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
        }
    },
)
async def predict(request: Request) -> Response:
    """Classify one digit already in MNIST form (784 values, or 28 rows of 28)."""
    # The hot path reads and validates its body itself instead of FastAPI's generic body handling (json.loads, then
    # pydantic on 784 floats, then jsonable_encoder on the answer): a third of the CPU per request. The contract is
    # the same: PredictRequest in (documented above through openapi_extra), PredictResponse out.
    classifier = loaded_classifier(request)
    try:
        raw = await request.body()
    except ClientDisconnect:
        # The body went over the limit (the middleware has already answered 413) or the client left.
        return Response(status_code=413)
    image = parse_predict_request(raw)
    prediction = await classifier.predict_one(image)
    answer = {
        "digit": prediction.digit,
        "probabilities": prediction.probabilities,
        "sure": prediction.sure,
        "model_version": classifier.version,
    }
    return Response(orjson.dumps(answer), media_type="application/json")


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
            PredictResponse(digit=p.digit, probabilities=p.probabilities, sure=p.sure, model_version=classifier.version)
            for p in predictions
        ],
        model_version=classifier.version,
    )


@router.post(
    "/image",
    response_model=ImagePredictResponse,
    responses={
        **ERRORS,
        415: {"model": ErrorResponse, "description": "Not a PNG or JPEG image"},
    },
)
def predict_image(
    file: UploadFile, classifier: ClassifierDep, settings: SettingsDep, feedback: FeedbackDep
) -> ImagePredictResponse:
    """Classify a PNG or JPEG picture of a digit, of any size, through the shared preprocessing. The answer carries
    the 28x28 image the model received, and an id to correct it with (POST /api/v1/feedback)."""
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
    prediction_id = None
    if feedback is not None:
        prediction_id = feedback.record(image, prediction.digit, prediction.sure, classifier.version)
        metrics.CORRECTABLE.labels(version=classifier.version).inc()
    return ImagePredictResponse(
        digit=prediction.digit,
        probabilities=prediction.probabilities,
        sure=prediction.sure,
        model_version=classifier.version,
        id=prediction_id,
        input=from_bytes(to_bytes(image)).tolist(),
    )
