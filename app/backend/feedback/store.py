"""Corrections users send, in a real database through SQLAlchemy: SQLite embedded (one file on a named volume),
or any server SQLAlchemy speaks to (PostgreSQL) by URL.

A prediction made through /api/v1/predict/image is kept for a bounded time (the retention) with what a correction
needs — the 28x28 image the model received, its answer, the model version — and nothing about who asked. A
correction copies those and stays: it is training data. The schema is Alembic's (migrations/), run by `upgrade`.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from app.mnist import corrections as documents

MIGRATIONS = Path(__file__).with_name("migrations")
IMAGE_SHAPE = (28, 28)


class Base(DeclarativeBase):
    pass


class Prediction(Base):
    """One answer a user may still correct; deleted after the retention."""

    __tablename__ = "predictions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    digit: Mapped[int] = mapped_column(SmallInteger)
    sure: Mapped[bool] = mapped_column(Boolean)
    model_version: Mapped[str] = mapped_column(String(64))
    image: Mapped[bytes] = mapped_column(LargeBinary)  # 784 bytes: the model's input, 0-255, row-major


class Correction(Base):
    """A user's "the right digit is …" for one prediction: what training reads back."""

    __tablename__ = "corrections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    predicted_digit: Mapped[int] = mapped_column(SmallInteger)
    right_digit: Mapped[int] = mapped_column(SmallInteger)
    model_version: Mapped[str] = mapped_column(String(64), index=True)
    image: Mapped[bytes] = mapped_column(LargeBinary)


class FeedbackError(Exception):
    """A correction refused: the reason is the message, the HTTP status its attribute."""

    status = 422


class UnknownPrediction(FeedbackError):
    status = 404


class AlreadyCorrected(FeedbackError):
    status = 409


def to_bytes(image: np.ndarray) -> bytes:
    """A 28x28 model input in [0, 1] as 784 bytes (what is stored and what the UI shows)."""
    if image.shape != IMAGE_SHAPE:
        raise ValueError(f"a model input is {IMAGE_SHAPE}, not {image.shape}")
    return bytes(np.clip(np.rint(np.asarray(image, dtype=np.float32) * 255), 0, 255).astype(np.uint8).tobytes())


def _utc(moment: datetime) -> datetime:
    """MOMENT with its zone: SQLite keeps none, and every time stored here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).reshape(IMAGE_SHAPE)


def make_engine(url: str) -> Engine:
    """An engine for URL. SQLite: one file many processes share (WAL, a 10 s wait for the write lock), and every
    transaction takes that lock at its start (BEGIN IMMEDIATE), so two replicas migrating at once run one after
    the other instead of failing halfway (pysqlite's own transaction handling is switched off for that, as
    SQLAlchemy's documentation describes)."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 10})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def prepare_sqlite_directory(url: str) -> None:
    """The folder of a SQLite file, made if missing (the file itself SQLite makes)."""
    database = make_url(url).database
    if url.startswith("sqlite") and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


class FeedbackStore:
    """Predictions kept for a correction, and corrections. Thread-safe: one engine, a session per call."""

    def __init__(self, url: str, retention_s: float, purge_every_s: float = 60.0) -> None:
        self.url = url
        self.retention_s = retention_s
        self.purge_every_s = purge_every_s
        prepare_sqlite_directory(url)
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._purged_at = 0.0
        self._purge_lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def record(self, image: np.ndarray, digit: int, sure: bool, model_version: str) -> str:
        """Keep one prediction for the retention; its id, for the correction that may follow."""
        prediction_id = uuid.uuid4().hex
        with self._sessions.begin() as session:
            session.add(
                Prediction(
                    id=prediction_id,
                    created_at=self._now(),
                    digit=digit,
                    sure=sure,
                    model_version=model_version,
                    image=to_bytes(image),
                )
            )
        self.purge_if_due()
        return prediction_id

    def correct(self, prediction_id: str, right_digit: int) -> Correction:
        """Store the right digit for a prediction still kept. Refused: unknown or expired id (404), the digit the
        model answered (422: that is no correction), a second correction of the same prediction (409)."""
        with self._sessions.begin() as session:
            prediction = session.get(Prediction, prediction_id)
            if prediction is None or self._expired(prediction.created_at):
                raise UnknownPrediction(
                    f"no prediction {prediction_id!r} is kept: unknown, or older than the retention "
                    f"({self.retention_s:g} s); predict again, then send the correction"
                )
            if prediction.digit == right_digit:
                raise FeedbackError(f"the model answered {right_digit}: a correction names another digit")
            correction = Correction(
                prediction_id=prediction.id,
                created_at=self._now(),
                predicted_digit=prediction.digit,
                right_digit=right_digit,
                model_version=prediction.model_version,
                image=prediction.image,
            )
            session.add(correction)
            try:
                session.flush()
            except IntegrityError:
                raise AlreadyCorrected(f"prediction {prediction_id!r} was already corrected") from None
        return correction

    def _expired(self, created_at: datetime) -> bool:
        return (self._now() - _utc(created_at)).total_seconds() > self.retention_s

    def purge(self) -> int:
        """Delete the predictions older than the retention; how many."""
        cutoff = self._now() - timedelta(seconds=self.retention_s)
        with self._sessions.begin() as session:
            result = session.execute(delete(Prediction).where(Prediction.created_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    def purge_if_due(self) -> None:
        """Purge at most once per PURGE_EVERY_S in this process: a delete per prediction would double the writes."""
        now = time.monotonic()
        if now - self._purged_at < self.purge_every_s or not self._purge_lock.acquire(blocking=False):
            return
        try:
            self._purged_at = now
            self.purge()
        finally:
            self._purge_lock.release()

    def counts(self) -> dict[str, int]:
        with self._sessions() as session:
            return {
                "predictions_kept": session.scalar(select(func.count()).select_from(Prediction)) or 0,
                "corrections": session.scalar(select(func.count()).select_from(Correction)) or 0,
            }

    def corrections(self) -> documents.Corrections:
        """Every correction, oldest first."""
        with self._sessions() as session:
            rows = list(session.scalars(select(Correction).order_by(Correction.id)))
        return documents.Corrections(
            [
                documents.Correction(
                    prediction_id=row.prediction_id,
                    created_at=_utc(row.created_at),
                    predicted_digit=row.predicted_digit,
                    right_digit=row.right_digit,
                    model_version=row.model_version,
                    image=row.image,
                )
                for row in rows
            ]
        )

    def dump(self) -> str:
        """Every correction as one document (app/mnist/corrections.py: what `invoke backup` keeps). Predictions
        waiting for a correction are not in it: they are gone within the retention anyway."""
        return self.corrections().dumps()

    def load(self, document: str) -> int:
        """Add the corrections of a document that this database lacks (by prediction id); how many were added.
        A document that is not one is refused before anything changes."""
        try:
            incoming = documents.loads(document)
        except documents.CorrectionsError as exc:
            raise FeedbackError(f"not a feedback backup: {exc}") from None
        with self._sessions.begin() as session:
            present = set(session.scalars(select(Correction.prediction_id)))
            added = [
                Correction(
                    prediction_id=item.prediction_id,
                    created_at=item.created_at,
                    predicted_digit=item.predicted_digit,
                    right_digit=item.right_digit,
                    model_version=item.model_version,
                    image=item.image,
                )
                for item in incoming.items
                if item.prediction_id not in present
            ]
            session.add_all(added)
        return len(added)
