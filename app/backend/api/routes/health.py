from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.backend.schemas import ErrorResponse, Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": ErrorResponse, "description": "The model is not loaded"}},
    summary="Readiness: the model is loaded and verified",
)
async def ready(request: Request) -> Readiness | JSONResponse:
    classifier = getattr(request.app.state, "classifier", None)
    if classifier is None:
        return JSONResponse({"detail": "model not loaded"}, status_code=503)
    return Readiness(status="ready", model_version=classifier.version)
