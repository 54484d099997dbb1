import io
import json
import logging
import shutil

import numpy as np
import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError

from app.backend.api.routes.predict import parse_predict_request
from app.backend.core.config import Settings
from app.backend.core.logging import JsonFormatter
from app.backend.main import create_app
from app.backend.schemas import PredictRequest
from app.mnist import contract, store
from tests.canvas import canvas_like


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def flat(digit: np.ndarray) -> list[float]:
    return (digit / 255.0).ravel().tolist()


def test_health_is_cheap_and_ready_reports_the_version(client, default_model):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": default_model.version}


def test_model_endpoint_reports_identity_and_contract(client, default_model):
    info = client.get("/api/v1/model").json()
    assert info["version"] == default_model.version
    assert info["test_accuracy"] == default_model.metadata["test_accuracy"]
    assert info["input_contract"]["shape"] == [None, 1, 28, 28]


def test_predict_flat_and_square_inputs_agree_and_are_right(client, mnist_sample, default_model):
    images, labels = mnist_sample
    for digit, label in zip(images[:20], labels[:20], strict=True):
        flat_answer = client.post("/api/v1/predict", json={"image": flat(digit)}).json()
        square_answer = client.post("/api/v1/predict", json={"image": (digit / 255.0).tolist()}).json()
        assert flat_answer == square_answer
        assert flat_answer["digit"] == label
        assert flat_answer["model_version"] == default_model.version
        assert len(flat_answer["probabilities"]) == 10
        assert flat_answer["sure"] is (
            max(flat_answer["probabilities"]) >= contract.not_sure_below(default_model.metadata)
        )
        assert sum(flat_answer["probabilities"]) == pytest.approx(1.0, abs=1e-4)


def test_batch_predicts_each_image(client, mnist_sample):
    images, labels = mnist_sample
    answer = client.post("/api/v1/predict/batch", json={"images": [flat(d) for d in images[:8]]})
    assert answer.status_code == 200
    assert [p["digit"] for p in answer.json()["predictions"]] == labels[:8].tolist()


def test_batch_over_the_configured_limit_is_refused_with_the_limit(client, mnist_sample):
    answer = client.post("/api/v1/predict/batch", json={"images": [flat(mnist_sample[0][0])] * 9})
    assert answer.status_code == 422
    assert "limit is 8" in answer.json()["detail"]


def test_image_upload_goes_through_the_shared_preprocessing(client, mnist_sample):
    images, labels = mnist_sample
    for digit, label in zip(images[:10], labels[:10], strict=True):
        data = png_bytes(canvas_like(digit, "rgba_transparent").resize((140, 140)))
        answer = client.post("/api/v1/predict/image", files={"file": ("digit.png", data, "image/png")})
        assert answer.status_code == 200, answer.text
        assert answer.json()["digit"] == label


BAD_JSON = {
    "short": json.dumps({"image": [0.0] * 783}),
    "long": json.dumps({"image": [0.0] * 785}),
    "ragged": json.dumps({"image": [[0.0] * 28] * 27 + [[0.0] * 27]}),
    "nan": '{"image": [' + ", ".join(["NaN"] + ["0.0"] * 783) + "]}",
    "inf": '{"image": [' + ", ".join(["Infinity"] + ["0.0"] * 783) + "]}",
    "huge_number": '{"image": [' + ", ".join(["1e400"] + ["0.0"] * 783) + "]}",
    "above_one": json.dumps({"image": [1.5] + [0.0] * 783}),
    "negative": json.dumps({"image": [-0.1] + [0.0] * 783}),
    "strings": json.dumps({"image": ["a"] * 784}),
    "null": json.dumps({"image": None}),
    "wrong_field": json.dumps({"pixels": [0.0] * 784}),
    "extra_field": json.dumps({"image": [0.0] * 784, "x": 1}),
    "empty_body": "",
    "not_json": "{not json",
    "array_body": "[1, 2, 3]",
    "one_nested_pixel": json.dumps({"image": [[0.0]] + [0.0] * 783}),
    "rows_nested_deeper": json.dumps({"image": [[[0.0]] * 28] + [[0.0] * 28] * 27}),
    "ragged_rows_of_784": json.dumps({"image": [[0.0] * 27, [0.0] * 29] + [[0.0] * 28] * 26}),
    "bracket_in_a_string": json.dumps({"image": ["["] + [0.0] * 783}),
    "big_integer": '{"image": [' + ", ".join(["123456789012345678901234567890"] + ["0"] * 783) + "]}",
    "too_deep": "[" * 5000 + "]" * 5000,
    # The schema says number: pixels are strict, so neither is converted (pydantic's lax mode would take them).
    "numeric_strings": json.dumps({"image": ["0.5"] * 784}),
    "booleans": json.dumps({"image": [True, False] * 392}),
}


@pytest.mark.parametrize("body", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_bad_predict_input_gets_422_with_a_reason(client, body):
    answer = client.post("/api/v1/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"]


ACCEPTED_BY_THE_CONTRACT = {
    "flat": json.dumps({"image": [0.25] * 784}),
    "square": json.dumps({"image": [[0.5] * 28] * 28}),
    "integers": json.dumps({"image": [0, 1] * 392}),
    "tiny": json.dumps({"image": [1e-320] * 784}),
    "just_above_one": json.dumps({"image": [1.00000001] + [0.0] * 783}),
    "nested_flat": json.dumps({"image": [[0.0] * 784]}),
    "negative_zero": json.dumps({"image": [-0.0] * 784}),
    "escaped_key": '{"\\u0069mage": [' + ", ".join(["0.5"] * 784) + "]}",
    "duplicate_key": json.dumps({"image": [0.0] * 784})[:-1] + ', "image": ' + json.dumps([0.75] * 784) + "}",
}


@pytest.mark.parametrize(
    "body", [*BAD_JSON.values(), *ACCEPTED_BY_THE_CONTRACT.values()], ids=[*BAD_JSON, *ACCEPTED_BY_THE_CONTRACT]
)
def test_the_fast_parser_accepts_exactly_what_the_schema_accepts(body):
    """POST /predict parses with orjson and numpy; its verdict and pixels must be pydantic's on PredictRequest."""
    try:
        expected = np.asarray(PredictRequest.model_validate_json(body).image, dtype=np.float32).reshape(28, 28)
    except ValidationError as exc:
        with pytest.raises(RequestValidationError) as refused:
            parse_predict_request(body.encode())
        assert [e["loc"] for e in refused.value.errors()] == [("body", *e["loc"]) for e in exc.errors()]
    else:
        np.testing.assert_array_equal(parse_predict_request(body.encode()), expected)


def test_body_over_the_limit_gets_413(client):
    answer = client.post(
        "/api/v1/predict", content=b"[" + b"0," * 40000 + b"0]", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert "limit of 65536 bytes" in answer.json()["detail"]


def test_streamed_body_over_the_limit_gets_413_without_content_length(client):
    def chunks():
        for _ in range(100):
            yield b" " * 1024

    answer = client.post("/api/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"", 422, "empty"),
        (b"GIF89a not really", 415, "not a PNG or JPEG"),
        (png_bytes(Image.new("L", (20, 20)), "GIF"), 415, "unsupported image format GIF"),
        (png_bytes(Image.new("RGB", (300, 300), "white")), 422, "no digit"),
        (png_bytes(Image.new("L", (1200, 1000))), 413, "1200x1000"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40000, 413, "larger than the limit"),
    ],
    ids=["empty", "garbage", "gif", "blank", "too_many_pixels", "file_too_big"],
)
def test_bad_uploads_get_a_clear_4xx(client, data, status, reason):
    answer = client.post("/api/v1/predict/image", files={"file": ("f.png", data, "image/png")})
    assert answer.status_code == status
    assert reason in answer.json()["detail"]


def test_upload_without_a_file_is_422(client):
    assert client.post("/api/v1/predict/image").status_code == 422


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/health", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/health").headers["x-request-id"]
    assert len(generated) == 32
    assert client.get("/health", headers={"x-request-id": "bad id\n"}).headers["x-request-id"] != "bad id\n"


def test_access_log_is_json_with_the_request_id(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        client.get("/health", headers={"x-request-id": "log-check-1"})
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line.get("request_id") == "log-check-1" and line["logger"] == "mnist.access"]
    assert access and access[0]["status"] == 200 and access[0]["path"] == "/health"


def confidence_counts(text: str, version: str) -> dict[str, float]:
    """{le: count} of the confidence histogram of VERSION in a /metrics TEXT ('count' for the total)."""
    found = {}
    for line in text.splitlines():
        if line.startswith(f'mnist_prediction_confidence_count{{version="{version}"}}'):
            found["count"] = float(line.split()[-1])
        elif line.startswith("mnist_prediction_confidence_bucket{") and f'version="{version}"' in line:
            found[line.split('le="')[1].split('"')[0]] = float(line.split()[-1])
    return found


def test_metrics_expose_http_and_model_series(client, mnist_sample, default_model):
    before = confidence_counts(client.get("/metrics").text, default_model.version)
    client.post("/api/v1/predict", json={"image": flat(mnist_sample[0][0])})
    text = client.get("/metrics").text
    assert 'http_requests_total{handler="/api/v1/predict",method="POST",status="2xx"}' in text
    assert f'mnist_model_info{{version="{default_model.version}"}} 1.0' in text
    assert 'mnist_predictions_total{digit="7"}' in text
    assert "mnist_inference_seconds_bucket" in text
    assert 'http_request_duration_seconds_bucket{handler="/api/v1/predict",le="0.2",method="POST"}' in text
    # A clean test digit: the model is sure of it, so it is counted, above 0.99 (in no bucket up to 0.99).
    after = confidence_counts(text, default_model.version)
    assert after["count"] - before.get("count", 0) == 1
    assert after["0.99"] == before.get("0.99", 0) and after["+Inf"] - before.get("+Inf", 0) == 1


def test_openapi_documents_errors(client):
    paths = client.get("/openapi.json").json()["paths"]
    image_responses = paths["/api/v1/predict/image"]["post"]["responses"]
    assert {"200", "413", "415", "422", "503"} <= set(image_responses)


def test_a_model_whose_bytes_are_not_its_version_refuses_to_start(tmp_path, default_model):
    shutil.copytree(default_model.path, tmp_path / default_model.version)
    store.set_current(tmp_path, default_model.version)
    with open(tmp_path / default_model.version / "model.onnx", "ab") as onnx:
        onnx.write(b"\x00")
    app = create_app(Settings(model_dir=tmp_path))
    with pytest.raises(store.ModelStoreError, match="integrity check"), TestClient(app):
        pass


def test_ready_is_503_before_the_model_loads(settings):
    client = TestClient(create_app(settings))  # not entered: lifespan has not run
    assert client.get("/ready").status_code == 503
    assert client.get("/api/v1/model").status_code == 503
    logging.getLogger().handlers[:] = []


def test_container_metrics_come_from_cgroup_files(tmp_path):
    from app.backend import metrics

    (tmp_path / "memory.current").write_text("1048576\n")
    (tmp_path / "memory.max").write_text("536870912\n")
    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert metrics.update_container_metrics(tmp_path)
    assert metrics.MEMORY_LIMIT._value.get() == 536870912
    assert metrics.CPU_SECONDS._value.get() == 2.5
    assert metrics.CPU_LIMIT._value.get() == 1.5
    assert not metrics.update_container_metrics(tmp_path / "absent")


def test_container_metrics_read_cgroup_v1_too(tmp_path):
    from app.backend import metrics

    for name, value in {
        "memory/memory.usage_in_bytes": "2048",
        "memory/memory.limit_in_bytes": "4096",
        "cpuacct/cpuacct.usage": "3000000000",
        "cpu/cpu.cfs_quota_us": "50000",
        "cpu/cpu.cfs_period_us": "100000",
    }.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(value + "\n")
    assert metrics.read_cgroup(tmp_path) == (2048.0, 4096.0, 3.0, 0.5)
