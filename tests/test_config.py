"""Config models: what may train, what may not, and the W&B sweep dict."""

from __future__ import annotations

import pytest

from lrtrack.config import SweepSpec, TrainConfig, load_spec, load_train_config, make_train_config
from lrtrack.errors import UserError


@pytest.mark.parametrize(
    "values, field",
    [
        ({"lr": 0}, "--lr"),
        ({"lr": -1}, "--lr"),
        ({"epochs": 0}, "--epochs"),
        ({"optimizer": "adamm"}, "--optimizer"),
        ({"scheduler": "linear"}, "--scheduler"),
        ({"dataset": "cifar"}, "--dataset"),
        ({"device": "tpu"}, "--device"),
        ({"val_split": 1.0}, "--val-split"),
        ({"batch_size": 0}, "--batch-size"),
        ({"momentum": 1.5}, "--momentum"),
    ],
)
def test_bad_train_values_name_the_flag(values, field):
    with pytest.raises(UserError) as err:
        make_train_config(values, flags=True)
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith(field + ":")


def test_combinations_are_checked():
    with pytest.raises(UserError, match="nesterov"):
        make_train_config({"optimizer": "adam", "nesterov": True})
    with pytest.raises(UserError, match="cnn-small needs images of at least 14x14"):
        make_train_config({"dataset": "digits", "model": "cnn-small"})
    with pytest.raises(UserError, match="warmup_epochs"):
        make_train_config({"scheduler": "onecycle", "warmup_epochs": 1})


def test_label_is_readable():
    assert TrainConfig(lr=0.001, optimizer="adam", scheduler="cosine").label() == "lr=0.001 adam cosine"
    assert TrainConfig(lr=0.05, optimizer="sgd").label() == "lr=0.05 sgd"


def test_spec_to_wandb_passes_the_sweeps_schema():
    from sweeps import schema_violations_from_proposed_config

    spec = SweepSpec(
        name="s",
        method="bayes",
        parameters={"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}, "optimizer": {"values": ["sgd", "adam"]}},
        fixed={"dataset": "digits", "epochs": 3},
        early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2},
        run_cap=5,
    )
    config = spec.to_wandb()
    assert not list(schema_violations_from_proposed_config(config))
    assert config["parameters"]["dataset"] == {"value": "digits"}
    assert config["early_terminate"] == {"type": "hyperband", "min_iter": 1, "eta": 2, "strict": False}
    assert config["run_cap"] == 5
    assert spec.swept == ["lr", "optimizer"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("name: s\nparameters:\n  lrr: {values: [0.1]}\n", "parameters.lrr: unknown setting"),
        ("name: s\nparameters:\n  optimizer: {values: [adam, adamm]}\n", "parameters.optimizer: Input should be"),
        ("name: s\nparameters:\n  lr: {values: [0.1]}\nfixed:\n  epoch: 3\n", "fixed.epoch: unknown setting (not a TrainConfig field); did you mean epochs?"),
        ("name: s\nparameters:\n  lr: {distribution: uniform, min: 0.1, max: 0.2}\n", "grid search needs 'values'"),
        ("name: s\nmethod: annealing\nparameters:\n  lr: {values: [0.1]}\n", "method: Input should be"),
        ("name: s\nparameters: {lr: {values: [0.1]}\n", "malformed YAML"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_spec_files_name_file_and_field(tmp_path, body, message):
    path = tmp_path / "spec.yaml"
    path.write_text(body)
    with pytest.raises(UserError) as err:
        load_spec(path)
    assert any(str(path) in line and message in line for line in err.value.problems), err.value.problems


def test_yaml_train_config_with_overrides(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("dataset: digits\nlr: 0.1\nepochs: 2\n")
    config = load_train_config(path, {"lr": 0.01})
    assert (config.dataset, config.lr, config.epochs) == ("digits", 0.01, 2)
