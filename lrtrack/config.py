"""Configuration models: one training run (`TrainConfig`) and one sweep (`SweepSpec`).

Every entry point (``lrtrack train``, sweep agents, packed training, benchmarks)
builds a `TrainConfig` and hands it to `lrtrack.train.run`. Field names are the
CLI flags with dashes (``batch_size`` <-> ``--batch-size``), so validation
messages can name the flag the user typed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lrtrack.errors import UserError

Dataset = Literal["mnist", "fashion-mnist", "digits"]
ModelName = Literal["fcn", "mlp2", "cnn", "cnn-small"]
OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop"]
SchedulerName = Literal["none", "step", "cosine", "exponential", "onecycle", "plateau"]

#: Input side length of each dataset's images (all are square, one channel).
IMAGE_SIZE = {"mnist": 28, "fashion-mnist": 28, "digits": 8}
#: Smallest input side each model accepts (two 3x3 convs without padding need 14).
MIN_IMAGE_SIZE = {"fcn": 1, "mlp2": 1, "cnn": 4, "cnn-small": 14}


def format_value(value: Any) -> str:
    """How a config value is shown everywhere (labels, tables, chart ticks): ``0.001``, ``adam``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


class TrainConfig(BaseModel):
    """Everything one training run needs. Defaults reproduce study A (Fashion-MNIST, fcn, Adam)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # data
    dataset: Dataset = Field("fashion-mnist", description="Dataset to train on.")
    data_dir: str | None = Field(None, description="Dataset directory (default: $LRTRACK_DATA_DIR or a per-user cache).")
    train_size: int | None = Field(None, gt=0, description="Use a seeded subset of this many training images.")
    test_size: int | None = Field(None, gt=0, description="Use a seeded subset of this many test images.")
    val_split: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction of the training split held out for validation.")
    # model
    model: ModelName = Field("fcn", description="Model architecture (see lrtrack/models.py).")
    hidden: int = Field(128, gt=0, description="Hidden width of fcn/mlp2.")
    # optimisation
    optimizer: OptimizerName = Field("adam", description="Optimizer.")
    lr: float = Field(1e-3, gt=0.0, description="Learning rate (peak rate for onecycle).")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="SGD/RMSprop momentum.")
    nesterov: bool = Field(False, description="Nesterov momentum (sgd with momentum > 0).")
    weight_decay: float = Field(0.0, ge=0.0, description="Weight decay (L2 penalty; decoupled for adamw).")
    scheduler: SchedulerName = Field("none", description="Learning-rate schedule.")
    step_size: int = Field(5, ge=1, description="StepLR: epochs between decays; plateau: patience in epochs.")
    gamma: float = Field(0.5, gt=0.0, le=1.0, description="StepLR/ExponentialLR decay factor; plateau reduction factor.")
    warmup_epochs: int = Field(0, ge=0, description="Linear warm-up epochs before the scheduler takes over.")
    epochs: int = Field(5, ge=1, description="Training epochs.")
    batch_size: int = Field(64, ge=1, description="Training batch size.")
    eval_batch_size: int = Field(1000, ge=1, description="Evaluation batch size (no effect on results).")
    seed: int = Field(0, description="Random seed: weights from seed, data order from seed + 1.")
    # runtime
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="fp32, or bf16 autocast.")
    drop_last: bool = Field(False, description="Drop the last partial training batch (fixed shapes for CUDA graphs).")
    compile: bool = Field(False, description="torch.compile the model.")
    diverge_loss: float = Field(100.0, gt=0.0, description="Stop as diverged when the epoch's train loss exceeds this.")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> TrainConfig:
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs optimizer sgd with momentum > 0")
        if self.warmup_epochs and self.scheduler in ("onecycle", "plateau"):
            raise ValueError(f"warmup_epochs cannot be combined with scheduler {self.scheduler}")
        if self.warmup_epochs >= self.epochs:
            raise ValueError("warmup_epochs must be smaller than epochs")
        side = IMAGE_SIZE[self.dataset]
        if side < MIN_IMAGE_SIZE[self.model]:
            raise ValueError(
                f"model {self.model} needs images of at least {MIN_IMAGE_SIZE[self.model]}x"
                f"{MIN_IMAGE_SIZE[self.model]}; dataset {self.dataset} has {side}x{side}"
            )
        return self

    def label(self, keys: list[str] | None = None) -> str:
        """A readable run name from the given fields, e.g. ``lr=0.001 adam cosine``."""
        keys = keys or ["lr", "optimizer", "scheduler"]
        parts = []
        for key in keys:
            value = getattr(self, key)
            if key in ("optimizer", "scheduler", "model", "dataset"):
                if not (key == "scheduler" and value == "none"):
                    parts.append(str(value))
            else:
                parts.append(f"{key}={format_value(value)}")
        return " ".join(parts)


#: Names a sweep may set: every TrainConfig field.
TRAIN_FIELDS = frozenset(TrainConfig.model_fields)


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "val/acc"
    goal: Literal["maximize", "minimize"] = "maximize"


class EarlyTerminate(BaseModel):
    """W&B's hyperband early termination (``sweeps.stop_runs`` runs it)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["hyperband"] = "hyperband"
    min_iter: int | None = Field(None, ge=1)
    max_iter: int | None = Field(None, ge=1)
    s: int | None = Field(None, ge=1)
    eta: float = Field(3, gt=1)
    strict: bool = False

    @model_validator(mode="after")
    def _needs_iter(self) -> EarlyTerminate:
        if self.min_iter is None and self.max_iter is None:
            raise ValueError("hyperband needs min_iter or max_iter")
        return self


class SweepSpec(BaseModel):
    """A sweep definition, loaded from ``sweeps/<study>.yaml``.

    ``parameters`` uses W&B's own syntax (``value``, ``values``, ``distribution``
    with ``min``/``max``, ...); ``fixed`` holds settings every run shares.
    ``expected`` holds a published study's figures (see `ExpectedResult`).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    project: str = "lrtrack"
    entity: str | None = None
    description: str = ""
    method: Literal["grid", "random", "bayes"] = "grid"
    metric: Metric = Field(default_factory=Metric)
    parameters: dict[str, dict[str, Any]]
    fixed: dict[str, Any] = Field(default_factory=dict)
    early_terminate: EarlyTerminate | None = None
    run_cap: int | None = Field(None, ge=1)
    expected: list[ExpectedResult] = Field(default_factory=list)
    range_test: dict[str, Any] | None = Field(
        None, description="The `lrtrack lr-find` result the sweep was written from (curve and suggestions); "
                          "`lrtrack report` draws it beside the sweep's results. Not sent to W&B.")

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not params:
            raise ValueError("at least one parameter is needed")
        unknown = sorted(set(params) - TRAIN_FIELDS)
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)}: not TrainConfig fields")
        for key, body in params.items():
            if not isinstance(body, dict):
                raise ValueError(f"{key}: must be a mapping such as {{values: [...]}}")
        return params

    @field_validator("fixed")
    @classmethod
    def _known_fixed(cls, fixed: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(fixed) - TRAIN_FIELDS)
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}: not TrainConfig fields")
        return fixed

    @model_validator(mode="after")
    def _values_train(self) -> SweepSpec:
        """Every listed value must make a valid TrainConfig (catches ``optimizer: [adamm]``)."""
        overlap = sorted(set(self.parameters) & set(self.fixed))
        if overlap:
            raise ValueError(f"{', '.join(overlap)}: set both in parameters and fixed")
        _train_config_or_raise(self.fixed, "fixed")
        for key, body in self.parameters.items():
            candidates = list(body.get("values", [])) + ([body["value"]] if "value" in body else [])
            for value in candidates:
                _train_config_or_raise({**self.fixed, key: value}, f"parameters.{key}")
            if self.method == "grid" and "value" not in body and "values" not in body:
                if body.get("distribution") not in ("int_uniform", "q_uniform"):
                    raise ValueError(f"parameters.{key}: grid search needs 'values' (or 'value'), not a continuous distribution")
        violations = self._schema_violations()
        if violations:
            raise ValueError("; ".join(violations))
        return self

    @property
    def swept(self) -> list[str]:
        """Names of the parameters that take more than one value."""
        return [k for k, body in self.parameters.items() if "value" not in body]

    def to_wandb(self) -> dict[str, Any]:
        """The dict ``wandb.sweep`` takes (fixed settings become ``{value: ...}`` parameters)."""
        parameters = {k: dict(v) for k, v in self.parameters.items()}
        parameters.update({k: {"value": v} for k, v in self.fixed.items()})
        config: dict[str, Any] = {
            "name": self.name,
            "method": self.method,
            "metric": self.metric.model_dump(),
            "parameters": parameters,
        }
        if self.description:
            config["description"] = self.description
        if self.early_terminate:
            config["early_terminate"] = self.early_terminate.model_dump(exclude_none=True)
        if self.run_cap:
            config["run_cap"] = self.run_cap
        return config

    def _schema_violations(self) -> list[str]:
        from sweeps import schema_violations_from_proposed_config

        return list(schema_violations_from_proposed_config(self.to_wandb()))


class ExpectedResult(BaseModel):
    """A published result for one configuration of a study, e.g. ``{lr: 0.001}``.

    ``metrics`` maps a logged key (``val/acc``, ``train/loss``...) to the final
    published value, or to a list with one value per epoch. Accuracies are fractions.
    """

    model_config = ConfigDict(extra="forbid")
    config: dict[str, Any]
    metrics: dict[str, float | list[float]] = Field(default_factory=dict)
    verdict: str | None = None
    note: str = ""


SweepSpec.model_rebuild()


def _train_config_or_raise(values: dict[str, Any], where: str) -> TrainConfig:
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        lines = [line.split(": ", 1)[-1] for line in validation_lines(exc)]
        raise ValueError("; ".join(f"{where}: {line}" for line in lines)) from None


def validation_lines(exc: ValidationError, flags: bool = False) -> list[str]:
    """One line per problem, each naming its field (as ``--flag`` when ``flags``)."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:
            lines.append(msg)
            continue
        name = ".".join(loc)
        if flags:
            name = "--" + loc[0].replace("_", "-")
        lines.append(f"{name}: {msg}")
    return lines


def make_train_config(values: dict[str, Any], source: str = "", flags: bool = False) -> TrainConfig:
    """Validate ``values`` into a TrainConfig or raise `UserError` naming each field."""
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        prefix = f"{source}: " if source else ""
        raise UserError([prefix + line for line in validation_lines(exc, flags=flags)]) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, raising `UserError` that names the file on any problem."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}:{where}: malformed YAML ({problem})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of settings at the top level")
    return data


def load_train_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A TrainConfig from a YAML file, with CLI ``overrides`` applied on top."""
    data = read_yaml(path)
    return make_train_config({**data, **(overrides or {})}, source=str(path))


def load_spec(path: str | Path) -> SweepSpec:
    """A SweepSpec from a YAML file; every problem names the file and the field."""
    data = read_yaml(path)
    try:
        return SweepSpec(**data)
    except ValidationError as exc:
        raise UserError([f"{path}: {line}" for line in validation_lines(exc)]) from None
