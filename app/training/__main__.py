"""`python -m app.training`: run the Kedro pipeline and print what it registered."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from app.mnist.corrections import CorrectionsError
from app.mnist.data import DatasetError
from app.mnist.store import ModelStoreError
from app.training.nodes import ExportError
from app.training.pipeline import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.training", description=__doc__)
    parser.add_argument("--epochs", type=int, help="override training.epochs")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override training.device")
    parser.add_argument("--model-dir", help="override registry.model_dir (the model store)")
    parser.add_argument("--data-dir", help="override data.data_dir (the MNIST cache)")
    parser.add_argument("--robustness-digits", type=int, help="override robustness.digits (test digits per condition)")
    parser.add_argument("--feedback", help="a corrections document (invoke backup) to train on as well: feedback.file")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "training.epochs": args.epochs,
            "training.device": args.device,
            "registry.model_dir": args.model_dir,
            "data.data_dir": args.data_dir,
            "robustness.digits": args.robustness_digits,
            "feedback.file": args.feedback,
        }.items()
        if value is not None
    }
    console = Console()
    try:
        result = run(overrides)
    except (DatasetError, ExportError, ModelStoreError, CorrectionsError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] training failed: {exc}")
        return 2
    table = Table(title="Registered model")
    for column in ("version", "test accuracy", "train time", "store"):
        table.add_column(column)
    table.add_row(
        result["version"][:16], f"{result['test_accuracy']:.2%}", f"{result['train_seconds']:.0f} s", result["path"]
    )
    console.print(table)
    if result.get("feedback"):
        used = result["feedback"]
        accuracy = used["held_out_accuracy"]
        console.print(
            f"corrections: {used['corrections']} from {used['file']}, {used['used_for_training']} trained on, "
            f"{used['held_out']} held out" + (f" (accuracy on them {accuracy:.1%})" if accuracy is not None else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
