"""Invoke tasks: `invoke --list` shows them. Each body is a thin call into `mnist_deploy`."""

from __future__ import annotations

import sys

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

TEST_TIERS = {
    "unit": "not slow and not integration and not infra and not e2e",
    "slow": "slow",
    "e2e": "e2e",
    "all": "",
}


@task(
    help={
        "epochs": "Override the number of training epochs (conf: training.epochs)",
        "device": "cpu, cuda, or auto (CUDA when present)",
        "model_dir": "Model store to register into (default: models/)",
    }
)
def train(c: Context, epochs: int = 0, device: str = "", model_dir: str = "") -> None:
    """Train, evaluate, export to ONNX and register a model (the Kedro pipeline)."""
    args = [sys.executable, "-m", "app.training"]
    if epochs:
        args += ["--epochs", str(epochs)]
    if device:
        args += ["--device", device]
    args += ["--model-dir", model_dir or c.mnist.model_dir, "--data-dir", c.mnist.data_dir]
    c.run(" ".join(args), pty=sys.stdout.isatty())


@task(help={"tier": f"Which tests: {', '.join(TEST_TIERS)}", "pytest_args": "Extra arguments for pytest"})
def test(c: Context, tier: str = "all", pytest_args: str = "") -> None:
    """Run the test suite (all tiers by default, as CI does)."""
    if tier not in TEST_TIERS:
        raise Exit(f"unknown tier {tier!r}; choose one of: {', '.join(TEST_TIERS)}", code=2)
    marker = f'-m "{TEST_TIERS[tier]}"' if TEST_TIERS[tier] else ""
    c.run(f"{sys.executable} -m pytest {marker} {pytest_args}", pty=sys.stdout.isatty())


@task
def lint(c: Context) -> None:
    """Static checks: ruff and mypy."""
    c.run(f"{sys.executable} -m ruff check .")
    c.run(f"{sys.executable} -m ruff format --check .")
    c.run(f"{sys.executable} -m mypy")


ns = Collection(train, test, lint)
