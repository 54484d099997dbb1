import json

import pytest

from app.mnist import preprocessing, robustness, store
from app.training import nodes
from app.training.pipeline import create_pipeline, load_parameters


def test_pipeline_runs_the_documented_nodes_in_dependency_order():
    names = [n.name for n in create_pipeline().nodes]
    assert sorted(names) == sorted(
        [
            "load_and_verify_data",
            "preprocess",
            "load_feedback",
            "train",
            "calibrate",
            "evaluate",
            "plot",
            "export",
            "robustness",
            "register",
        ]
    )
    chain = ["load_and_verify_data", "preprocess", "train", "calibrate", "evaluate", "export", "robustness", "register"]
    assert [n for n in names if n in chain] == chain


def test_parameters_come_from_kedro_conf_and_accept_overrides():
    params = load_parameters({"training.epochs": 3})
    assert params["training"]["epochs"] == 3
    assert params["training"]["batch_size"] == 128
    assert params["export"]["opset"] == 17


def test_the_validation_split_is_held_out_the_same_way_every_time():
    """What training holds out is what bench/validation_suite.py scores models on: a choice never sees the test set,
    nor an image a model trained on."""
    params = load_parameters()["training"]
    validation, kept, _ = nodes.validation_split(60000, params)
    again, _, _ = nodes.validation_split(60000, params)
    assert len(validation) == params["validation"] and len(kept) == 60000 - params["validation"]
    assert not set(validation.tolist()) & set(kept.tolist())
    assert validation.tolist() == again.tolist()
    other, _, _ = nodes.validation_split(60000, {**params, "seed": params["seed"] + 1})
    assert other.tolist() != validation.tolist()


@pytest.mark.slow
def test_one_epoch_run_registers_a_verified_model_with_plots(one_epoch_model):
    """`python -m app.training --epochs 1` (tests/conftest.py, shared with the deploy scenario's release B)."""
    model = store.load(one_epoch_model)  # the store's first model is its current one
    assert model.version == store.current_version(one_epoch_model)
    assert model.metadata["test_accuracy"] > 0.97
    for plot in ("confusion_matrix.png", "training_curves.png", "per_class_accuracy.png", "robustness.png"):
        assert (model.path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metadata = json.loads((model.path / "metadata.json").read_text())
    # What a promotion compares and a reader needs: the suite, the validation split, the code it came from.
    assert metadata["robustness"]["digits"] == 40
    assert set(metadata["robustness"]["conditions"]) == {c.name for c in robustness.CONDITIONS}
    assert metadata["preprocessing_version"] == preprocessing.VERSION
    assert metadata["validation"]["images"] == 5000 and metadata["validation"]["accuracy"] > 0.95
    assert len(metadata["git"]["commit"]) == 40
    calibration = metadata["calibration"]
    assert calibration["temperature"] > 0 and 0 < calibration["not_sure_below"] < 1
    assert calibration["ece_after"] <= calibration["ece_before"] + 0.005
    assert [h["epoch"] for h in metadata["history"]] == [1] and "test_accuracy" not in metadata["history"][0]
    assert set(metadata["dataset"]["md5"]) == {
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    }
