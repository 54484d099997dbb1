"""Request and response bodies: the constraints here are what /docs shows and what 422 errors explain."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.backend.core.config import HARD_MAX_BATCH

# strict: a pixel is a JSON number, as the schema says; true/false or "0.5" are refused, not converted.
Pixel = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
FlatImage = Annotated[list[Pixel], Field(min_length=784, max_length=784, description="784 pixels, row-major")]
Row = Annotated[list[Pixel], Field(min_length=28, max_length=28)]
SquareImage = Annotated[list[Row], Field(min_length=28, max_length=28, description="28 rows of 28 pixels")]
ImageData = FlatImage | SquareImage

EXAMPLE_IMAGE = [0.0] * 784


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: ImageData = Field(
        examples=[EXAMPLE_IMAGE],
        description="A digit already in MNIST form: 28x28 in [0, 1], white ink on black, centred. "
        "Use /api/v1/predict/image for arbitrary pictures.",
    )


class BatchPredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: list[ImageData] = Field(min_length=1, max_length=HARD_MAX_BATCH)


class PredictResponse(BaseModel):
    digit: int = Field(ge=0, le=9, description="The most probable digit")
    probabilities: list[float] = Field(min_length=10, max_length=10, description="Calibrated, one per digit")
    sure: bool = Field(
        description="False: the model is not sure (its top probability is below the threshold chosen on held-out "
        "drawings); show the answer as a guess, or ask for another drawing"
    )
    model_version: str


class ImagePredictResponse(PredictResponse):
    id: str | None = Field(
        description="Refer to this prediction in POST /api/v1/feedback for a while (the server's retention); "
        "null when this server keeps no feedback"
    )
    input: list[list[int]] = Field(
        min_length=28,
        max_length=28,
        description="The 28x28 image the model received after preprocessing, 0-255, white ink on black: "
        "what the model saw of the picture",
    )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="The id a prediction of /predict/image gave")
    digit: int = Field(ge=0, le=9, strict=True, description="The right digit: the one the person drew")


class FeedbackResponse(BaseModel):
    prediction_id: str
    predicted_digit: int
    right_digit: int
    model_version: str


class BatchPredictResponse(BaseModel):
    predictions: list[PredictResponse]
    model_version: str


class ModelInfo(BaseModel):
    version: str
    test_accuracy: float
    created: str
    opset: int
    input_contract: dict[str, object]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model_version: str


class ErrorResponse(BaseModel):
    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """422: the body failed validation (a list of issues) or the request broke a rule (a sentence)."""

    detail: str | list[ValidationIssue]
