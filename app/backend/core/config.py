"""Backend settings, read from the environment (prefix MNIST_) by pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

HARD_MAX_BATCH = 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MNIST_", env_file=None, extra="ignore")

    model_dir: Path = Field(Path("models"), description="The model store (models/<version>/ and `current`)")
    model_version: str | None = Field(None, description="Serve this version; default: the store's `current`")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_batch: int = Field(256, ge=1, le=HARD_MAX_BATCH, description="Images allowed in one batch request")
    max_request_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Largest request body accepted")
    max_upload_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Largest image file accepted")
    max_image_pixels: int = Field(4096 * 4096, ge=28 * 28, description="Largest decoded image (width x height)")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (JSON list)")
    inference_threads: int = Field(1, ge=1, le=64, description="ONNX Runtime intra-op threads per process")
    feedback_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the corrections database (sqlite:////var/lib/mnist/feedback.db, "
        "postgresql+psycopg://…); unset: predictions get no id and /api/v1/feedback answers 503",
    )
    feedback_password_file: Path | None = Field(
        None, description="A file holding the database's password (a compose secret), added to feedback_url"
    )
    feedback_retention_s: float = Field(
        3600.0, ge=60, description="How long a prediction is kept for a correction to refer to it (seconds)"
    )


def feedback_database_url(settings: Settings) -> str | None:
    """The feedback database's URL with its password from feedback_password_file (kept out of the environment,
    where `docker inspect` and every child process would see it); None without a database."""
    if not settings.feedback_url:
        return None
    if settings.feedback_password_file is None:
        return settings.feedback_url
    from sqlalchemy.engine import make_url

    password = settings.feedback_password_file.read_text().strip()
    return make_url(settings.feedback_url).set(password=password).render_as_string(hide_password=False)


@lru_cache
def get_settings() -> Settings:
    return Settings()
