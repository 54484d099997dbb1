from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.backend.core.config import Settings
from app.backend.main import create_app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        feedback_url=f"sqlite:///{tmp_path_factory.mktemp('feedback') / 'feedback.db'}",
        model_dir=ROOT / "models",
        max_batch=8,
        max_request_bytes=64 * 1024,
        max_upload_bytes=32 * 1024,
        max_image_pixels=1000 * 1000,
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
