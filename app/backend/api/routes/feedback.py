from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app.backend import metrics
from app.backend.api.deps import FeedbackDep
from app.backend.feedback.store import FeedbackError
from app.backend.schemas import ErrorResponse, FeedbackRequest, FeedbackResponse, ValidationErrorResponse

router = APIRouter(prefix="/api/v1", tags=["feedback"])


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackResponse,
    responses={
        400: {"model": ErrorResponse, "description": "The body could not be parsed (not JSON)"},
        404: {"model": ErrorResponse, "description": "No such prediction kept: unknown, or older than the retention"},
        409: {"model": ErrorResponse, "description": "This prediction was already corrected"},
        422: {"model": ValidationErrorResponse, "description": "Not a digit, not an id, or the digit answered"},
        503: {"model": ErrorResponse, "description": "This server keeps no feedback (no database configured)"},
    },
)
def send_feedback(body: FeedbackRequest, feedback: FeedbackDep) -> FeedbackResponse:
    """Correct a prediction of /api/v1/predict/image: the right digit is stored with the image the model received,
    its answer and its version, for the next training (`invoke train --with-feedback`)."""
    if feedback is None:
        raise HTTPException(503, "this server keeps no feedback: it runs without a database (MNIST_FEEDBACK_URL)")
    try:
        correction = feedback.correct(body.prediction_id, body.digit)
    except FeedbackError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    metrics.CORRECTIONS.labels(digit=str(correction.right_digit), version=correction.model_version).inc()
    return FeedbackResponse(
        prediction_id=correction.prediction_id,
        predicted_digit=correction.predicted_digit,
        right_digit=correction.right_digit,
        model_version=correction.model_version,
    )
