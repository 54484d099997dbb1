from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # numpy is imported where used: `invoke verify` runs on a bastion that has no numpy
    import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """The first 500 images of the real MNIST test set, uint8 (500, 28, 28), and their labels."""
    import numpy as np

    with np.load(FIXTURES / "mnist_test_500.npz") as npz:
        return npz["images"], npz["labels"]


@pytest.fixture(scope="session")
def default_model():
    """The committed default model, as the backend loads it."""
    from app.mnist import store

    return store.load(ROOT / "models")


@pytest.fixture(scope="session")
def onnx_session(default_model):
    import onnxruntime as ort

    return ort.InferenceSession(default_model.onnx_bytes, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def one_epoch_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store holding one model, trained for one epoch by `python -m app.training` (its first model is its
    current one; the robustness suite on 40 digits): the pipeline's test checks it, the deploy scenario ships it as
    release B. Trained once a session (about a minute)."""
    model_dir = tmp_path_factory.mktemp("one-epoch-model")
    argv = ["--epochs", "1", "--robustness-digits", "40", "--model-dir", str(model_dir), "--data-dir", "data"]
    subprocess.run([sys.executable, "-m", "app.training", *argv], cwd=ROOT, check=True)
    return model_dir


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stack", "the running stack the integration tests check")
    group.addoption("--backend-url", default="", help="a running backend to test (default: start the test stack)")
    group.addoption("--frontend-url", default="", help="a running frontend to test")
    group.addoption("--prometheus-url", default="", help="a running Prometheus to test")
    group.addoption("--timeout", type=float, default=10.0, help="seconds to wait for each endpoint")
    hosts = parser.getgroup("hosts", "deployed hosts the infra tests check (invoke verify)")
    hosts.addoption("--env", default="sandbox", help="inventory whose hosts tests/infra checks over SSH")
    hosts.addoption(
        "--ca-file",
        default="",
        help="CA that signed the proxy's certificate (default: the sandbox's own CA on the sandbox, else the system's)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The deploy scenario runs last: after the unit, stack and browser tests, as CI orders them."""
    items.sort(key=lambda item: item.get_closest_marker("deploy") is not None)
