"""The robustness suite on validation digits — training images every model of the store held out — for models side
by side: how a training choice is made without looking at the test set (README, "The model").

    python bench/validation_suite.py MODEL_DIR [MODEL_DIR ...] [--digits 500] [--seed 1]

Each MODEL_DIR is a registered version's folder (read by `store.load`, its bytes checked), scored at its own
calibrated "not sure" threshold. The digits are the suite's sample (`robustness.sample`, same seed) of the images
`training.validation` holds out under the training seed of app/training/conf (`nodes.validation_split`), drawn
through the real preprocessing. Prints one column per model: accuracy per condition, the mean, and what the metadata
records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.mnist import contract, robustness, store  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path, help="registered versions' folders (models/<version>)")
    parser.add_argument("--digits", type=int, default=500, help="validation digits per condition")
    parser.add_argument("--seed", type=int, default=1, help="the suite's sample and drawing seed")
    args = parser.parse_args()
    # Here, not at the top: the suite's worker processes import this module again, and need neither torch nor Kedro.
    from app.training import nodes, pipeline

    console = Console()
    try:  # each read once, its bytes checked against its version
        models = [store.load(folder.resolve().parent, folder.resolve().name) for folder in args.models]
    except store.ModelStoreError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2

    parameters = pipeline.load_parameters()
    mnist = nodes.load_data({"data_dir": ROOT / parameters["data"]["data_dir"]})
    validation, _, _ = nodes.validation_split(len(mnist.x_train), parameters["training"])
    held = validation.numpy()
    digits, labels = robustness.sample(mnist.x_train[held], mnist.y_train[held], args.digits, args.seed)

    table = Table(title=f"Robustness suite on {len(digits)} validation digits (held out from training)")
    table.add_column("condition")
    columns: list[dict[str, float]] = []
    for model in models:
        threshold = contract.not_sure_below(model.metadata)
        classify = robustness.onnx_classifier(model.onnx_bytes)
        console.print(f"scoring {model.version[:12]} (not sure below {threshold:.3f}) …")
        results = robustness.evaluate(classify, digits, labels, seed=args.seed, not_sure_below=threshold)
        columns.append({r.condition: r.accuracy for r in results})
        table.add_column(model.version[:12], justify="right")
    for condition in robustness.CONDITIONS:
        table.add_row(
            f"{condition.name} (target {100 * condition.target:.0f})",
            *[f"{100 * column[condition.name]:.1f}" for column in columns],
        )
    table.add_row("mean", *[f"{100 * float(np.mean(list(column.values()))):.2f}" for column in columns])
    for label, read in (
        ("clean validation (metadata)", lambda m: f"{100 * (m.get('validation') or {}).get('accuracy', 0):.2f}"),
        ("test accuracy (metadata)", lambda m: f"{100 * m.get('test_accuracy', 0):.2f}"),
        ("training seconds (metadata)", lambda m: f"{m.get('train_seconds', 0):.0f}"),
    ):
        table.add_row(label, *[read(model.metadata) for model in models])
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
