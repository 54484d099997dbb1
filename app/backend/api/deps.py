from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app.backend.core.config import Settings, get_settings
from app.backend.inference import Classifier


def classifier(request: Request) -> Classifier:
    loaded: Classifier | None = getattr(request.app.state, "classifier", None)
    if loaded is None:
        raise HTTPException(status_code=503, detail="model not loaded")
    return loaded


ClassifierDep = Annotated[Classifier, Depends(classifier)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
