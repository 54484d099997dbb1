"""The robustness suite on validation digits — training images every model of the store held out — for models side
by side: how a training choice is made without looking at the test set (README, "The model").

    python bench/validation_suite.py MODEL_DIR [MODEL_DIR ...] [--digits 500] [--seed 1] [--conditions A,B]
        [--misreads PNG]

Each MODEL_DIR is a registered version's folder (read by `store.load`, its bytes checked), scored at its own
calibrated "not sure" threshold. The digits are the suite's sample (`robustness.sample`, same seed) of the images
`training.validation` holds out under the training seed of app/training/conf (`nodes.validation_split`), drawn
through the real preprocessing. Prints one column per model: accuracy per condition, the mean, and what the metadata
records. --misreads PNG draws the pictures the first model misreads in the first condition listed, as the model
received them (28x28), each titled "true→read confidence", and prints the most frequent confusions: what a person
would make of them is the question a target for that condition raises.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
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
    parser.add_argument(
        "--conditions", default="", help="comma-separated names: only these (more digits for one, say); default all"
    )
    parser.add_argument("--misreads", type=Path, help="PNG: the first model's misreads in the first condition")
    args = parser.parse_args()
    # Here, not at the top: the suite's worker processes import this module again, and need neither torch nor Kedro.
    from app.training import nodes, pipeline

    console = Console()
    names = [name for name in args.conditions.split(",") if name] or list(robustness.BY_NAME)
    unknown = [name for name in names if name not in robustness.BY_NAME]
    if unknown:
        known = ", ".join(robustness.BY_NAME)
        console.print(f"[bold red]error:[/] no condition {', '.join(unknown)}; the suite's: {known}")
        return 2
    conditions = [robustness.BY_NAME[name] for name in names]  # in the order given: --misreads takes the first
    if args.misreads and not conditions[0].expects_digit:
        console.print(f"[bold red]error:[/] --misreads: {conditions[0].name} holds no digit to misread; list one first")
        return 2
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
    console.print(f"drawing and preparing {len(conditions)} conditions × {len(digits)} digits …")
    ready = list(robustness.prepared(digits, conditions, args.seed))  # once, for every model
    for model in models:
        threshold = contract.not_sure_below(model.metadata)
        classify = robustness.onnx_classifier(model.onnx_bytes)
        console.print(f"scoring {model.version[:12]} (not sure below {threshold:.3f}) …")
        results = robustness.score_prepared(classify, conditions, ready, labels, threshold)
        columns.append({r.condition: r.accuracy for r in results})
        table.add_column(model.version[:12], justify="right")
    for condition in conditions:
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
    if args.misreads:
        plot_misreads(models[0], conditions[0], ready[0], labels, args.misreads, console)
    return 0


def plot_misreads(
    model: store.StoredModel,
    condition: robustness.Condition,
    ready: robustness.Prepared,
    labels: np.ndarray,
    path: Path,
    console: Console,
) -> None:
    """What MODEL received (READY, the condition's prepared pictures) and answered wrong in CONDITION (up to 60
    pictures), as a PNG at PATH."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inputs, where = ready
    probabilities = contract.probabilities(robustness.onnx_classifier(model.onnx_bytes)(inputs.astype(np.float32)))
    read, truth = probabilities.argmax(axis=1), labels[where]
    wrong = np.flatnonzero(read != truth)
    confusions = Counter(f"{t}→{r}" for t, r in zip(truth[wrong], read[wrong], strict=True)).most_common(8)
    console.print(
        f"{condition.name}: {len(wrong)} of {len(where)} pictures read as a digit are misread; most often "
        + ", ".join(f"{pair} ×{n}" for pair, n in confusions)
    )
    shown = wrong[:60]
    columns = 10
    rows = max(1, -(-len(shown) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown, strict=False):
        ax.imshow(inputs[i], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{truth[i]}→{read[i]} {probabilities[i].max():.2f}", fontsize=7)
    fig.suptitle(
        f"{model.version[:12]}: {condition.name} misreads, {len(wrong)} of {len(where)} validation digits", fontsize=9
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
