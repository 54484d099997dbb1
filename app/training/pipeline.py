"""The Kedro pipeline and how to run it with parameters from Kedro's conf."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner

from app.training import nodes

CONF_DIR = Path(__file__).parent / "conf"


def create_pipeline() -> Pipeline:
    return Pipeline(
        [
            node(nodes.load_data, "params:data", "mnist", name="load_and_verify_data"),
            node(nodes.preprocess, "mnist", "dataset", name="preprocess"),
            node(nodes.load_feedback, "params:feedback", "feedback", name="load_feedback"),
            node(nodes.train, ["dataset", "params:training", "feedback"], "trained", name="train"),
            node(nodes.calibrate, ["trained", "params:calibration"], "calibrated", name="calibrate"),
            node(nodes.evaluate, ["calibrated", "dataset", "feedback"], "metrics", name="evaluate"),
            node(nodes.plot_metrics, "metrics", "plots", name="plot"),
            node(
                nodes.export,
                ["calibrated", "dataset", "metrics", "params:export", "params:training"],
                "exported",
                name="export",
            ),
            node(nodes.score_robustness, ["exported", "mnist", "params:robustness"], "suite", name="robustness"),
            node(nodes.register, ["exported", "plots", "suite", "params:registry"], "registered", name="register"),
        ]
    )


def load_parameters(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kedro's parameters from conf/, with OVERRIDES given as dotted keys ({"training.epochs": 2})."""
    nested: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        *parents, leaf = dotted.split(".")
        level = nested
        for key in parents:
            level = level.setdefault(key, {})
        level[leaf] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # omegaconf's deprecation notice, raised inside Kedro
        loader = OmegaConfigLoader(str(CONF_DIR), base_env="base", default_run_env="local", runtime_params=nested)
        return dict(loader["parameters"])


def run(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the whole pipeline; OVERRIDES are dotted parameter keys, e.g. {"training.epochs": 2}."""
    parameters = load_parameters(overrides)
    catalog = DataCatalog({f"params:{key}": MemoryDataset(value) for key, value in parameters.items()})
    for name in (
        "mnist",
        "dataset",
        "feedback",
        "trained",
        "calibrated",
        "metrics",
        "plots",
        "exported",
        "suite",
        "registered",
    ):
        catalog[name] = MemoryDataset(copy_mode="assign")
    logging.getLogger("kedro.io").setLevel(logging.WARNING)  # one line per dataset load/save drowns the progress
    SequentialRunner().run(create_pipeline(), catalog)
    registered: dict[str, Any] = catalog.load("registered")
    return registered
