from __future__ import annotations

from fastapi import APIRouter

from app.backend.api.deps import ClassifierDep
from app.backend.schemas import ErrorResponse, ModelInfo

router = APIRouter(prefix="/api/v1", tags=["model"])


@router.get("/model", response_model=ModelInfo, responses={503: {"model": ErrorResponse}})
async def model_info(classifier: ClassifierDep) -> ModelInfo:
    """The served model's identity and its input contract."""
    meta = classifier.metadata
    return ModelInfo(
        version=classifier.version,
        test_accuracy=meta["test_accuracy"],
        created=meta["created"],
        opset=meta["opset"],
        input_contract=meta["input_contract"],
    )
