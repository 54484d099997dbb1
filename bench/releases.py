"""The two releases the sandbox benches deploy: A is models/, B a model trained for one epoch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.mnist import store
from mnist_deploy import images, render, stack

ROOT = render.ROOT


def prepare(model_b: Path) -> None:
    """Train B into MODEL_B unless it holds a model, and build both releases' images: builds are not measured."""
    if not (model_b / "current").is_file():
        subprocess.run(
            # The robustness suite on 50 digits, as the CI scenario's one-epoch model: B is deployed, not judged.
            [
                sys.executable,
                "-m",
                "app.training",
                "--epochs",
                "1",
                "--robustness-digits",
                "50",
                "--model-dir",
                str(model_b),
            ],
            cwd=ROOT,
            check=True,
        )
    for model_dir in (ROOT / "models", model_b):
        stack.ensure_images(images.release_tag(store.current_version(model_dir)), None, model_dir)
