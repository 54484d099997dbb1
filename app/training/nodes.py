"""The pipeline's nodes. Each is a plain function of its inputs, so tests can call them directly."""

from __future__ import annotations

import io
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.mnist import contract, corrections, preprocessing, robustness, store
from app.mnist.data import Mnist, load_mnist
from app.training import calibration
from app.training.augment import augment, scribbles
from app.training.model import DigitNet


class ExportError(RuntimeError):
    """The exported model does not behave like the trained one."""


def load_data(data_params: dict[str, Any]) -> Mnist:
    return load_mnist(Path(data_params["data_dir"]))


def preprocess(mnist: Mnist) -> dict[str, Any]:
    """MNIST already follows the input contract; scale to [0, 1] and add the channel axis."""

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)

    return {
        "x_train": images(mnist.x_train),
        "y_train": torch.from_numpy(mnist.y_train.astype(np.int64)),
        "x_test": images(mnist.x_test),
        "y_test": torch.from_numpy(mnist.y_test.astype(np.int64)),
        "checksums": mnist.checksums,
    }


def load_feedback(params: dict[str, Any]) -> dict[str, Any]:
    """Users' corrections (a backup document, when `file` is set), split into a part that trains and a part held out
    to measure the new model on (by a seeded shuffle, so the same file splits the same way)."""
    empty = torch.zeros((0, 1, contract.IMAGE_SIZE, contract.IMAGE_SIZE))
    nothing = torch.zeros(0, dtype=torch.int64)
    if not params.get("file"):
        return {"x_train": empty, "y_train": nothing, "x_held": empty, "y_held": nothing, "source": None}
    path = Path(params["file"])
    try:
        found = corrections.loads(path.read_bytes())
    except OSError as exc:
        raise corrections.CorrectionsError(f"{path}: {exc.strerror}") from None
    images = torch.from_numpy(found.images.astype(np.float32) / 255.0).unsqueeze(1)
    labels = torch.from_numpy(found.right)
    order = torch.randperm(len(found), generator=torch.Generator().manual_seed(params["seed"]))
    held = order[: round(len(found) * params["held_out_share"])]
    kept = order[len(held) :]
    return {
        "x_train": images[kept].repeat(params["repeat"], 1, 1, 1),
        "y_train": labels[kept].repeat(params["repeat"]),
        "x_held": images[held],
        "y_held": labels[held],
        "source": {"file": path.name, "sha256": store.sha256(path.read_bytes()), "corrections": len(found)},
        "used": len(kept),
    }


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    return float((_predict(model, x, device).argmax(1) == y).float().mean())


@torch.no_grad()
def _predict(model: torch.nn.Module, x: torch.Tensor, device: torch.device, batch: int = 2000) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch].to(device)).cpu() for i in range(0, len(x), batch)])


def validation_split(n: int, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    """The indices of the N training images held out for validation (PARAMS' `validation` of them) and of those
    trained on, drawn by PARAMS' seed; and the generator, which draws the rest of training. Every choice is made on
    the held-out ones (bench/validation_suite.py scores models on them)."""
    generator = torch.Generator().manual_seed(params["seed"])
    held_out = torch.randperm(n, generator=generator)
    return held_out[: params["validation"]], held_out[params["validation"] :], generator


def train(dataset: dict[str, Any], params: dict[str, Any], feedback: dict[str, Any]) -> dict[str, Any]:
    """Train the CNN with a fixed seed, on MNIST and the corrections' training part; one progress bar per epoch."""
    torch.manual_seed(params["seed"])
    validation, kept, generator = validation_split(len(dataset["x_train"]), params)
    if params.get("threads"):
        torch.set_num_threads(int(params["threads"]))
    device = _device(params["device"])
    model = DigitNet(tuple(params["channels"]), params["hidden"], params["dropout"], params.get("convs", 1)).to(device)
    x = torch.cat([dataset["x_train"][kept], feedback["x_train"]])
    y = torch.cat([dataset["y_train"][kept], feedback["y_train"]])
    x_val, y_val = dataset["x_train"][validation], dataset["y_train"][validation]
    val_augmented = augment(x_val, params["augment"], torch.Generator().manual_seed(params["seed"] + 1))
    batch_size, epochs = params["batch_size"], params["epochs"]
    steps_per_epoch = len(x) // batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=params["learning_rate"], total_steps=epochs * steps_per_epoch
    )
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns) as progress:
        for epoch in range(1, epochs + 1):
            task = progress.add_task(f"epoch {epoch}/{epochs}", total=steps_per_epoch, status="")
            model.train()
            order = torch.randperm(len(x), generator=generator)
            running = 0.0
            for step in range(steps_per_epoch):
                idx = order[step * batch_size : (step + 1) * batch_size]
                xb = augment(x[idx], params["augment"], generator)
                outliers = scribbles(round(batch_size * params["outliers"]["share"]), params["outliers"], generator)
                logits = model(torch.cat([xb, outliers]).to(device))
                loss = F.cross_entropy(logits[: len(idx)], y[idx].to(device))
                # outlier exposure: on a scribble, every digit equally likely (cross-entropy to the uniform answer)
                loss = loss - params["outliers"]["weight"] * F.log_softmax(logits[len(idx) :], dim=1).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                running += loss.item()
                if step % 50 == 0:
                    progress.update(task, completed=step, status=f"loss {running / (step + 1):.4f}")
            clean = _accuracy(model, x_val, y_val, device)
            drawn = _accuracy(model, val_augmented, y_val, device)
            history.append(
                {
                    "epoch": epoch,
                    "loss": running / steps_per_epoch,
                    "validation_accuracy": clean,
                    "validation_augmented_accuracy": drawn,
                }
            )
            progress.update(
                task,
                completed=steps_per_epoch,
                status=f"loss {running / steps_per_epoch:.4f}  validation {clean:.2%}, drawn {drawn:.2%}",
            )
    model = model.cpu().eval()
    return {
        "model": model,
        "history": history,
        "seconds": time.perf_counter() - started,
        "device": str(device),
        "validation": {"clean": x_val, "drawn": val_augmented, "labels": y_val},
    }


def calibrate(trained: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Temperature scaling on the held-out images, clean and drawn (app/training/calibration.py); the model that
    goes on is the calibrated one, so the exported logits are already divided by the temperature."""
    held_out = trained["validation"]
    images = torch.cat([held_out["clean"], held_out["drawn"]])
    labels = torch.cat([held_out["labels"], held_out["labels"]])
    logits = _predict(trained["model"], images, torch.device("cpu"))
    fitted = calibration.calibrate(logits, labels, params["answered_accuracy"])
    model = calibration.Calibrated(trained["model"], fitted.temperature).eval()
    return {**trained, "model": model, "calibration": fitted.as_dict()}


def evaluate(trained: dict[str, Any], dataset: dict[str, Any], feedback: dict[str, Any]) -> dict[str, Any]:
    """Test accuracy, per-class accuracy, confusion matrix; plots of the matrix and the training curves; with
    corrections, how many trained and the accuracy on those held out."""
    y_true = dataset["y_test"].numpy()
    y_pred = _predict(trained["model"], dataset["x_test"], torch.device("cpu")).argmax(1).numpy()
    confusion = np.zeros((contract.NUM_CLASSES, contract.NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class = confusion.diagonal() / confusion.sum(axis=1)
    return {
        "test_accuracy": float((y_true == y_pred).mean()),
        "per_class_accuracy": {str(d): round(float(a), 6) for d, a in enumerate(per_class)},
        "confusion_matrix": confusion.tolist(),
        "history": trained["history"],
        "train_seconds": round(trained["seconds"], 1),
        "device": trained["device"],
        "calibration": trained.get("calibration"),
        "feedback": _feedback_metrics(trained, feedback),
    }


def _feedback_metrics(trained: dict[str, Any], feedback: dict[str, Any]) -> dict[str, Any] | None:
    if feedback["source"] is None:
        return None
    held = len(feedback["y_held"])
    accuracy = (
        _accuracy(trained["model"], feedback["x_held"], feedback["y_held"], torch.device("cpu")) if held else None
    )
    return {
        **feedback["source"],
        "used_for_training": feedback["used"],
        "held_out": held,
        "held_out_accuracy": accuracy,
    }


def plot_metrics(metrics: dict[str, Any]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, bytes] = {}
    confusion = np.array(metrics["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    shown = ax.imshow(np.log1p(confusion), cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color="white" if i == j else "black")
    ax.set(
        xlabel="predicted",
        ylabel="true",
        xticks=range(10),
        yticks=range(10),
        title=f"Confusion matrix — test accuracy {metrics['test_accuracy']:.2%}",
    )
    fig.colorbar(shown, ax=ax, label="log(1 + count)")
    plots["confusion_matrix.png"] = _png(fig)

    history = metrics["history"]
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["loss"] for h in history], marker="o")
    left.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    right.plot(epochs, [100 * h["validation_accuracy"] for h in history], marker="o", color="tab:green", label="MNIST")
    right.plot(
        epochs, [100 * h["validation_augmented_accuracy"] for h in history], marker="o", color="tab:blue", label="drawn"
    )
    right.axhline(99.4, color="tab:red", linestyle="--", label="target 99.4 %")
    right.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy (5,000 held-out images)")
    right.legend()
    plots["training_curves.png"] = _png(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    digits = list(metrics["per_class_accuracy"])
    ax.bar(digits, [100 * metrics["per_class_accuracy"][d] for d in digits])
    ax.set(xlabel="digit", ylabel="accuracy (%)", ylim=(95, 100), title="Per-class test accuracy")
    plots["per_class_accuracy.png"] = _png(fig)
    return plots


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def export(
    trained: dict[str, Any],
    dataset: dict[str, Any],
    metrics: dict[str, Any],
    params: dict[str, Any],
    training_params: dict[str, Any],
) -> dict[str, Any]:
    """ONNX export plus metadata; fails if ONNX Runtime and torch disagree on the parity images."""
    model = trained["model"]
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, contract.IMAGE_SIZE, contract.IMAGE_SIZE),),
        buffer,  # type: ignore[arg-type]  # a file object is accepted; the stub names only paths
        input_names=[contract.INPUT_NAME],
        output_names=[contract.OUTPUT_NAME],
        dynamic_axes={contract.INPUT_NAME: {0: "batch"}, contract.OUTPUT_NAME: {0: "batch"}},
        opset_version=params["opset"],
        dynamo=False,
    )
    onnx_bytes = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(onnx_bytes))
    parity = dataset["x_test"][: params["parity_images"]]
    max_diff = parity_difference(model, onnx_bytes, parity)
    if not max_diff < params["parity_tolerance"]:
        raise ExportError(f"ONNX Runtime and torch differ by {max_diff:.2e} (tolerance {params['parity_tolerance']})")
    version = store.sha256(onnx_bytes)
    last = metrics["history"][-1] if metrics["history"] else {}
    metadata = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "test_accuracy": metrics["test_accuracy"],
        "per_class_accuracy": metrics["per_class_accuracy"],
        "train_seconds": metrics["train_seconds"],
        "device": metrics["device"],
        "history": metrics["history"],
        "dataset": {"name": "MNIST", "train": 60000, "test": 10000, "md5": dataset["checksums"]},
        "hyperparameters": training_params,
        "parity": {"images": len(parity), "max_abs_diff": max_diff},
        "versions": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "python": platform.python_version(),
        },
        "opset": params["opset"],
        "input_contract": contract.describe(),
        "preprocessing_version": preprocessing.VERSION,
        "calibration": metrics.get("calibration"),
        "feedback": metrics.get("feedback"),
        "git": _git_commit(),
        "validation": {
            "images": training_params.get("validation", 0),
            "accuracy": last.get("validation_accuracy"),
            "augmented_accuracy": last.get("validation_augmented_accuracy"),
        },
    }
    return {"onnx": onnx_bytes, "metadata": metadata}


def _git_commit() -> dict[str, Any]:
    """The commit the model was trained from, and whether the working tree differed from it (None outside git)."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def parity_difference(model: torch.nn.Module, onnx_bytes: bytes, images: torch.Tensor) -> float:
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    ours = session.run(None, {contract.INPUT_NAME: images.numpy()})[0]
    with torch.no_grad():
        theirs = model.eval()(images).numpy()
    return float(np.abs(ours - theirs).max())


def score_robustness(exported: dict[str, Any], mnist: Mnist, params: dict[str, Any]) -> dict[str, Any]:
    """The robustness suite (app/mnist/robustness.py) on the exported model, through the real preprocessing."""
    with Progress(
        TextColumn("robustness"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}")
    ) as progress:
        task = progress.add_task("suite", total=len(robustness.CONDITIONS), status="")

        def scored(result: robustness.Result) -> None:
            progress.update(task, advance=1, status=f"{result.condition} {result.accuracy:.1%}")

        results, report = robustness.score(
            exported["onnx"],
            mnist.x_test,
            mnist.y_test,
            params["digits"],
            params["seed"],
            on_result=scored,
            not_sure_below=contract.not_sure_below(exported["metadata"]),
        )
    title = f"Robustness suite — model {exported['metadata']['version'][:12]}, {report['digits']} test digits"
    return {"report": report, "plot": robustness.plot(results, title)}


def register(
    exported: dict[str, Any], plots: dict[str, bytes], suite: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """Add the model, its plots and its suite's results to the store. `current` moves only on a first model:
    afterwards `invoke promote` moves it, if the model beats the current one."""
    root = Path(params["model_dir"])
    metadata = {**exported["metadata"], "robustness": suite["report"]}
    first = not (root / store.CURRENT_FILE).is_file()
    version = store.register(root, exported["onnx"], metadata, {**plots, "robustness.png": suite["plot"]})
    if first:
        store.set_current(root, version)
    return {
        "version": version,
        "path": str(root / version),
        "test_accuracy": metadata["test_accuracy"],
        "train_seconds": metadata["train_seconds"],
        "robustness": suite["report"],
        "feedback": metadata.get("feedback"),
        "current": store.current_version(root) == version,
    }
