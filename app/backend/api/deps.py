"""Dependencies read what the app holds in `app.state`. They are `async` on purpose: a plain `def`
dependency costs a thread-pool hop on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app.backend.core.config import Settings
from app.backend.feedback.store import FeedbackStore
from app.backend.inference import Classifier


def loaded_classifier(request: Request) -> Classifier:
    loaded: Classifier | None = request.app.state.classifier
    if loaded is None:
        raise HTTPException(status_code=503, detail="model not loaded")
    return loaded


async def classifier(request: Request) -> Classifier:
    return loaded_classifier(request)


async def settings(request: Request) -> Settings:
    configured: Settings = request.app.state.settings
    return configured


async def feedback_store(request: Request) -> FeedbackStore | None:
    """The feedback database, or None where this server keeps no feedback (MNIST_FEEDBACK_URL unset)."""
    store: FeedbackStore | None = request.app.state.feedback
    return store


ClassifierDep = Annotated[Classifier, Depends(classifier)]
SettingsDep = Annotated[Settings, Depends(settings)]
FeedbackDep = Annotated[FeedbackStore | None, Depends(feedback_store)]
