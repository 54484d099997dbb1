"""Feedback: predictions get an id and show what the model saw; corrections land in a real (SQLite) database through
SQLAlchemy, with Alembic's schema; backup and restore; what a rollback to older code meets."""

from __future__ import annotations

import ast
import multiprocessing
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.backend.core.config import Settings, feedback_database_url
from app.backend.feedback import schema
from app.backend.feedback.store import MIGRATIONS, Base, FeedbackError, FeedbackStore, make_engine
from app.backend.main import create_app
from app.mnist import corrections as documents
from app.mnist.preprocessing import decode_image, preprocess
from tests.canvas import canvas_like
from tests.servers import ROOT
from tests.unit.backend.test_api import png_bytes


def upload(client: TestClient, digit: np.ndarray) -> dict:
    data = png_bytes(canvas_like(digit, "rgba_transparent").resize((140, 140)))
    answer = client.post("/api/v1/predict/image", files={"file": ("digit.png", data, "image/png")})
    assert answer.status_code == 200, answer.text
    return answer.json() | {"png": data}


def metric(text_: str, name: str, **labels: str) -> float:
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    for line in text_.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def test_an_image_prediction_shows_the_models_input_and_takes_a_correction(client, mnist_sample, settings):
    images, labels = mnist_sample[0], [int(label) for label in mnist_sample[1]]
    answer = upload(client, images[0])
    assert len(answer["id"]) == 32 and answer["digit"] == labels[0]
    seen = np.array(answer["input"])
    assert seen.shape == (28, 28) and seen.min() >= 0 and seen.max() == 255
    expected = preprocess(decode_image(answer["png"], settings.max_image_pixels))
    assert np.abs(seen / 255 - expected).max() <= 0.5 / 255 + 1e-6

    before = client.get("/metrics").text
    wrong = (labels[0] + 1) % 10
    corrected = client.post("/api/v1/feedback", json={"prediction_id": answer["id"], "digit": wrong})
    assert corrected.status_code == 201, corrected.text
    assert corrected.json() == {
        "prediction_id": answer["id"],
        "predicted_digit": labels[0],
        "right_digit": wrong,
        "model_version": answer["model_version"],
    }
    after = client.get("/metrics").text
    counted = {"digit": str(wrong), "version": answer["model_version"]}
    assert (
        metric(after, "mnist_feedback_corrections_total", **counted)
        == metric(before, "mnist_feedback_corrections_total", **counted) + 1
    )
    assert metric(after, "mnist_feedback_predictions_total", version=answer["model_version"]) >= 1

    stored = FeedbackStore(settings.feedback_url, settings.feedback_retention_s).corrections()
    (row,) = [i for i, item in enumerate(stored.items) if item.prediction_id == answer["id"]]
    assert stored.right[row] == wrong and stored.predicted[row] == labels[0]
    np.testing.assert_array_equal(stored.images[row], seen)  # the image the model received, not the upload


def test_bad_corrections_get_a_clear_4xx_and_change_nothing(client, mnist_sample, settings):
    images, labels = mnist_sample[0], [int(label) for label in mnist_sample[1]]
    answer = upload(client, images[1])
    store = FeedbackStore(settings.feedback_url, settings.feedback_retention_s)
    before = store.counts()["corrections"]
    cases = [
        ({"prediction_id": "0" * 32, "digit": 3}, 404, "no prediction"),
        ({"prediction_id": answer["id"], "digit": labels[1]}, 422, f"the model answered {labels[1]}"),
        ({"prediction_id": answer["id"], "digit": 10}, 422, "less than or equal to 9"),
        ({"prediction_id": answer["id"], "digit": "3"}, 422, "valid integer"),
        ({"prediction_id": "not-an-id", "digit": 3}, 422, "pattern"),
        ({"prediction_id": answer["id"]}, 422, "Field required"),
    ]
    for body, status, reason in cases:
        refused = client.post("/api/v1/feedback", json=body)
        assert refused.status_code == status, (body, refused.text)
        assert reason in refused.text, (body, refused.text)
    assert store.counts()["corrections"] == before
    right = (labels[1] + 1) % 10
    assert client.post("/api/v1/feedback", json={"prediction_id": answer["id"], "digit": right}).status_code == 201
    again = client.post("/api/v1/feedback", json={"prediction_id": answer["id"], "digit": right})
    assert again.status_code == 409 and "already corrected" in again.text
    assert store.counts()["corrections"] == before + 1


def test_a_server_without_a_database_gives_no_id_and_says_why_it_takes_no_feedback(settings, mnist_sample):
    with TestClient(create_app(settings.model_copy(update={"feedback_url": None}))) as client:
        answer = upload(client, mnist_sample[0][0])
        assert answer["id"] is None and len(answer["input"]) == 28
        refused = client.post("/api/v1/feedback", json={"prediction_id": "a" * 32, "digit": 1})
        assert refused.status_code == 503 and "MNIST_FEEDBACK_URL" in refused.json()["detail"]


def test_predictions_are_kept_only_for_the_retention(tmp_path, monkeypatch):
    store = FeedbackStore(f"sqlite:///{tmp_path / 'f.db'}", retention_s=60, purge_every_s=0)
    schema.upgrade(store.url)
    old = store.record(np.zeros((28, 28), np.float32), 1, True, "v1")
    later = datetime.now(UTC) + timedelta(seconds=61)
    monkeypatch.setattr(store, "_now", lambda: later)
    with pytest.raises(FeedbackError, match="older than the retention"):
        store.correct(old, 7)
    assert store.purge() == 1
    assert store.counts() == {"predictions_kept": 0, "corrections": 0}


def test_the_orm_and_the_migrations_describe_the_same_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    assert schema.upgrade(url) == (None, schema.head())
    assert schema.upgrade(url) == (schema.head(), schema.head())  # again: nothing to do
    engine = make_engine(url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


DESTRUCTIVE = {"drop_table", "drop_column", "alter_column", "rename_table", "drop_index", "drop_constraint"}


def test_every_migration_is_additive_so_a_rollback_runs_against_it():
    """New replicas migrate while the old release serves, and a rollback runs older code on the newer schema."""
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        upgrade = next(
            node
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef) and node.name == "upgrade"
        )
        calls = {
            node.func.attr
            for node in ast.walk(upgrade)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        assert not calls & DESTRUCTIVE, f"{path.name} is not additive: {sorted(calls & DESTRUCTIVE)}"


def test_older_code_serves_a_database_a_newer_release_migrated(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    schema.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()
    assert schema.upgrade(url) == ("f00d", "f00d")
    store = FeedbackStore(url, 3600)
    assert store.correct(store.record(np.zeros((28, 28), np.float32), 1, True, "v1"), 2).right_digit == 2


def _migrate(url: str) -> tuple[str | None, str]:
    return schema.upgrade(url)


def test_replicas_starting_together_migrate_one_after_the_other(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_migrate, [url] * 4)
    assert sorted(before or "" for before, _ in results) == ["", schema.head(), schema.head(), schema.head()]


def test_backup_and_restore_keep_every_correction_and_refuse_what_is_not_a_backup(tmp_path):
    source = FeedbackStore(f"sqlite:///{tmp_path / 'a.db'}", 3600)
    schema.upgrade(source.url)
    rng = np.random.default_rng(0)
    for digit in range(5):
        image = rng.random((28, 28)).astype(np.float32)
        source.correct(source.record(image, digit, False, "v1"), (digit + 3) % 10)
    dump = source.dump()

    target = FeedbackStore(f"sqlite:///{tmp_path / 'b.db'}", 3600)
    schema.upgrade(target.url)
    for bad in ("", "{}", '{"format": "mnist-feedback-backup/1", "corrections": [{"prediction_id": "x"}]}'):
        with pytest.raises(FeedbackError, match="not a feedback backup"):
            target.load(bad)
    assert target.counts()["corrections"] == 0
    assert target.load(dump) == 5
    assert target.load(dump) == 0  # restoring twice adds nothing
    restored, original = target.corrections(), source.corrections()
    assert restored == original and len(restored) == 5


def test_the_command_line_backs_up_and_restores_through_stdout_and_stdin(tmp_path):
    def cli(*args: str, url: str | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "app.backend.feedback", *args, *(["--url", url] if url else [])]
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, input=stdin, env={"PATH": "/usr/bin"})

    source, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    assert "empty -> 0001" in cli("upgrade", url=source).stdout
    store = FeedbackStore(source, 3600)
    store.correct(store.record(np.ones((28, 28), np.float32), 4, True, "v1"), 9)
    backup = cli("backup", url=source).stdout
    assert documents.loads(backup).right.tolist() == [9]
    restored = cli("restore", url=target, stdin=backup)
    assert restored.returncode == 0 and "1 corrections added" in restored.stderr
    assert FeedbackStore(target, 3600).corrections() == store.corrections()
    refused = cli("restore", url=target, stdin="not json")
    assert refused.returncode == 2 and "restore refused: not a feedback backup" in refused.stderr
    unset = cli("backup")
    assert unset.returncode == 2 and "MNIST_FEEDBACK_URL" in unset.stderr


def test_settings_refuse_a_retention_too_short_to_correct_anything():
    with pytest.raises(ValueError, match="greater than or equal to 60"):
        Settings(feedback_retention_s=5)


def test_the_databases_password_comes_from_its_secret_file_not_the_url(tmp_path):
    secret = tmp_path / "database_password"
    secret.write_text("a-long-real-one\n")
    settings = Settings(feedback_url="postgresql+psycopg://mnist@database:5432/feedback", feedback_password_file=secret)
    with_password = "postgresql+psycopg://mnist:a-long-real-one@database:5432/feedback"  # pragma: allowlist secret
    assert feedback_database_url(settings) == with_password
    assert feedback_database_url(Settings(feedback_url="sqlite:////x/f.db")) == "sqlite:////x/f.db"
    assert feedback_database_url(Settings()) is None
