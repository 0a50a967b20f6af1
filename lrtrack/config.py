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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from lrtrack.errors import UserError
from lrtrack.formatting import format_value
from lrtrack.metrics import VAL_ACC

OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop"]
SchedulerName = Literal["none", "step", "cosine", "exponential", "onecycle", "plateau"]

#: Input side length of each built-in dataset's images (all are square, one channel).
IMAGE_SIZE = {"mnist": 28, "fashion-mnist": 28, "digits": 8}
#: Smallest input side each model accepts (two 3x3 convs without padding need 14).
MIN_IMAGE_SIZE = {"fcn": 1, "mlp2": 1, "cnn": 4, "cnn-small": 14}


def flat_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Nested settings flattened with dotted names: ``{"model_args": {"width": 64}}`` ->
    ``{"model_args.width": 64}`` (how labels, tables and ``sweep show`` name them)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update({f"{key}.{k}": v for k, v in flat_settings(value).items()})
        else:
            flat[key] = value
    return flat


class TrainConfig(BaseModel):
    """Everything one training run needs. Defaults reproduce study A (Fashion-MNIST, fcn, Adam)."""

    # protected_namespaces=(): `model` and `model_args` are settings, not pydantic's model_* API
    # (pydantic before 2.10 warns about such names on import)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    # data
    dataset: str = Field("fashion-mnist", description="Dataset: a built-in (mnist, fashion-mnist, digits), a dataset "
                                                     "class or callable by import reference (torchvision.datasets:KMNIST, "
                                                     "package.module:callable), or a name registered under the entry-point "
                                                     "group lrtrack.datasets.")
    dataset_args: dict[str, Any] = Field({}, description="Keyword arguments of a referenced dataset: "
                                         "callable(root=DATA_DIR, train=True|False, **dataset_args).")
    data_dir: str | None = Field(None, description="Dataset directory (default: $LRTRACK_DATA_DIR or a per-user cache).")
    data_path: Literal["auto", "resident", "streaming"] = Field(
        "auto", description="resident: splits decoded once into tensors on the device; streaming: a DataLoader; "
                            "auto: resident when they fit in --resident-budget-mb (the W&B config logs the path taken).")
    resident_budget_mb: float = Field(2048, gt=0, description="Largest decoded size (float32, all splits) kept resident "
                                                              "on the device by data_path auto.")
    loader_workers: int | None = Field(None, ge=0, description="Streaming: DataLoader worker processes (default: the "
                                                               "CPU cores training leaves free, at most 4).")
    augment: bool = Field(False, description="Augment training images: random crop with padding and horizontal flip.")
    train_size: int | None = Field(None, gt=0, description="Use a seeded subset of this many training images.")
    test_size: int | None = Field(None, gt=0, description="Use a seeded subset of this many test images.")
    val_split: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction of the training split held out for validation.")
    # model
    model: str = Field("fcn", description="Model: a built-in (fcn, mlp2, cnn, cnn-small; see lrtrack/models.py), "
                                          "an import reference package.module:callable, or a name registered under "
                                          "the entry-point group lrtrack.models.")
    model_args: dict[str, Any] = Field({}, description="Keyword arguments of a referenced model: "
                                       "callable(input_shape, num_classes, **model_args).")
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

    @field_validator("model", "dataset")
    @classmethod
    def _reference(cls, value: str, info: ValidationInfo) -> str:
        """A built-in, or a reference that resolves here (imports; nothing is called)."""
        from lrtrack.references import DATASETS, MODELS, is_builtin, resolve

        kind = MODELS if info.field_name == "model" else DATASETS
        if not is_builtin(kind, value):
            resolve(kind, value)  # ValueError saying why not
        return value

    @model_validator(mode="after")
    def _combinations(self) -> TrainConfig:
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs optimizer sgd with momentum > 0")
        if self.warmup_epochs and self.scheduler in ("onecycle", "plateau"):
            raise ValueError(f"warmup_epochs cannot be combined with scheduler {self.scheduler}")
        if self.warmup_epochs >= self.epochs:
            raise ValueError("warmup_epochs must be smaller than epochs")
        if self.model_args and self.model in MIN_IMAGE_SIZE:
            raise ValueError(f"model_args: built-in model {self.model} takes none (it is sized by hidden)")
        if self.dataset_args and self.dataset in IMAGE_SIZE:
            raise ValueError(f"dataset_args: built-in dataset {self.dataset} takes none")
        side = IMAGE_SIZE.get(self.dataset)  # a referenced dataset's shape is checked on a real batch
        if side is not None and self.model in MIN_IMAGE_SIZE and side < MIN_IMAGE_SIZE[self.model]:
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
            if isinstance(value, dict):  # model_args: each value, e.g. model_args.width=64
                parts += [f"{name}={format_value(v)}" for name, v in flat_settings({key: value}).items()]
            elif key in ("optimizer", "scheduler", "model", "dataset"):
                if not (key == "scheduler" and value == "none"):
                    parts.append(str(value))
            else:
                parts.append(f"{key}={format_value(value)}")
        return " ".join(parts)


#: Names a sweep may set: every TrainConfig field.
TRAIN_FIELDS = frozenset(TrainConfig.model_fields)

#: Spellings of settings that other tools use, and lrtrack's name for each. They are
#: never accepted silently: a sweep file that uses one fails with a suggestion.
KNOWN_SPELLINGS = {
    "learning_rate": "lr", "learningrate": "lr", "learning_rate_init": "lr", "base_lr": "lr",
    "optimiser": "optimizer", "optim": "optimizer", "opt": "optimizer",
    "batchsize": "batch_size", "bs": "batch_size", "train_batch_size": "batch_size",
    "num_epochs": "epochs", "n_epochs": "epochs", "epoch": "epochs", "max_epochs": "epochs",
    "wd": "weight_decay", "weightdecay": "weight_decay",
    "lr_scheduler": "scheduler", "schedule": "scheduler", "lr_schedule": "scheduler", "sched": "scheduler",
    "warmup": "warmup_epochs", "warmup_steps": "warmup_epochs",
    "data": "dataset", "arch": "model", "architecture": "model", "net": "model",
    "hidden_size": "hidden", "hidden_dim": "hidden", "width": "hidden",
    "random_seed": "seed",
}

#: Top-level keys of W&B's sweep configuration (``sweeps``' JSON schema); W&B's schema
#: check judges their values. lrtrack adds `LRTRACK_KEYS`.
WANDB_KEYS = (
    "name", "description", "program", "command", "entity", "project", "method", "metric", "parameters",
    "early_terminate", "run_cap", "controller", "job", "image_uri", "scheduler", "metrics", "apiVersion", "kind",
)
#: What lrtrack adds to W&B's format: settings every run shares, a study's published figures,
#: the `lrtrack lr-find` result a sweep was written from.
LRTRACK_KEYS = ("fixed", "expected", "range_test")


def suggest(name: str, known: Any) -> str | None:
    """lrtrack's name for a known spelling (``learning_rate`` -> ``lr``), a dashed flag
    spelling (``batch-size`` -> ``batch_size``) or a close typo, else None."""
    import difflib

    known = sorted(known)
    lowered = name.lower()
    normal = lowered.replace("-", "_")
    for candidate in (lowered, normal):
        if candidate in known:
            return candidate
        if KNOWN_SPELLINGS.get(candidate) in known:
            return KNOWN_SPELLINGS[candidate]
    close = difflib.get_close_matches(normal, known, n=1, cutoff=0.75)
    return close[0] if close else None


def _unknown(kind: str, name: str, known: Any) -> str:
    hint = suggest(name, known)
    return f"unknown {kind}" + (f"; did you mean {hint}?" if hint else "")


class Metric(BaseModel):
    """The sweep's objective; W&B's other metric keys (``target``, ...) pass through to W&B."""

    model_config = ConfigDict(extra="allow")
    name: str = VAL_ACC
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
    """A sweep definition, loaded from ``sweeps/<study>.yaml``: W&B's sweep format, plus
    ``fixed`` (settings every run shares) and ``expected`` (a published study's figures,
    see `ExpectedResult`).

    Every top-level key of W&B's format is accepted (`WANDB_KEYS`); ``parameters`` uses
    W&B's own syntax (``value``, ``values``, ``distribution`` with ``min``/``max``, ...)
    and must name `TrainConfig` fields. ``program`` and ``command`` are kept and handed
    to W&B's controller (``--backend wandb``); lrtrack's agents always run lrtrack's
    training function. `spec_problems` lists every problem of a file at once.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    project: str = "lrtrack"
    entity: str | None = None
    description: str = ""
    program: str | None = None
    command: list[Any] | None = None
    method: Literal["grid", "random", "bayes"] = "grid"
    metric: Metric = Field(default_factory=Metric)
    parameters: dict[str, dict[str, Any]]
    early_terminate: EarlyTerminate | None = None
    run_cap: int | None = Field(None, ge=1)
    # W&B keys lrtrack's local backend does not use; passed to W&B's controller as they are.
    controller: dict[str, Any] | None = None
    job: str | None = None
    image_uri: str | None = None
    scheduler: dict[str, Any] | None = None
    metrics: list[Any] | None = None
    apiVersion: str | None = None  # noqa: N815 (W&B's spelling)
    kind: str | None = None
    # what lrtrack adds
    fixed: dict[str, Any] = Field(default_factory=dict)
    expected: list[ExpectedResult] = Field(default_factory=list)
    range_test: dict[str, Any] | None = Field(
        None, description="The `lrtrack lr-find` result the sweep was written from (curve and suggestions); "
                          "`lrtrack report` draws it beside the sweep's results. Not sent to W&B.")

    @model_validator(mode="after")
    def _settings_train(self, info: ValidationInfo) -> SweepSpec:
        """The checks of `spec_problems` beyond types (skipped when it already ran them)."""
        if not (info.context or {}).get("checked"):
            data = self.model_dump(exclude_none=True)
            problems = _setting_problems(data) + [f"{field}: {message}" for field, message in _engine_problems(data)]
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @property
    def swept(self) -> list[str]:
        """Names of the parameters that take more than one value."""
        return [k for k, body in self.parameters.items() if "value" not in body]

    def to_wandb(self) -> dict[str, Any]:
        """The dict ``wandb.sweep`` takes: the file's W&B keys, with ``fixed`` settings as
        ``{value: ...}`` parameters (``expected`` stays with lrtrack)."""
        return _wandb_config(self.model_dump(exclude_none=True))


def _wandb_config(data: dict[str, Any]) -> dict[str, Any]:
    """W&B's sweep dict from a spec's (possibly unvalidated) mapping."""
    config = {key: data[key] for key in WANDB_KEYS if key in data and data[key] not in (None, "")}
    parameters = data.get("parameters")
    if isinstance(parameters, dict):
        parameters = {k: dict(v) if isinstance(v, dict) else v for k, v in parameters.items()}
        fixed = data.get("fixed")
        if isinstance(fixed, dict):
            parameters.update({k: {"value": v} for k, v in fixed.items() if k not in parameters})
        config["parameters"] = parameters
    if isinstance(config.get("metric"), dict):
        config["metric"] = {k: v for k, v in config["metric"].items() if v is not None}
    if isinstance(config.get("early_terminate"), dict):
        config["early_terminate"] = {k: v for k, v in config["early_terminate"].items() if v is not None}
    config.setdefault("method", "grid")
    return config


def spec_problems(data: dict[str, Any]) -> list[str]:
    """Every problem of a sweep file's mapping at once, one ``field: message`` line each.

    Types and lrtrack's keys are pydantic's; settings are lrtrack's (each parameter and
    fixed setting a `TrainConfig` field, every listed value trainable, ``metric.name`` a
    key lrtrack logs); the W&B part is judged by W&B's own schema check (``sweeps``).
    A problem already reported for a field is not reported again by a later layer.
    """
    problems: list[str] = []
    flagged: set[str] = set()

    def add(field: str, message: str) -> None:
        problems.append(f"{field}: {message}")
        flagged.add(field)

    for key in data:
        if key not in WANDB_KEYS and key not in LRTRACK_KEYS:
            add(str(key), _unknown("key", str(key), WANDB_KEYS + LRTRACK_KEYS)
                + f" (W&B's sweep keys and lrtrack's {', '.join(LRTRACK_KEYS)})")
    try:
        SweepSpec.model_validate(data, context={"checked": True})
    except ValidationError as exc:
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            if err["type"] == "extra_forbidden" and len(loc) == 1:
                continue  # reported above, with a suggestion
            field = ".".join(loc) or "spec"
            add(field, err["msg"].removeprefix("Value error, "))
    for line in _setting_problems(data):
        field, _, message = line.partition(": ")
        if field not in flagged:
            add(field, message)
    for field, message in _engine_problems(data):
        if not any(field == f or field.startswith(f + ".") for f in flagged):
            add(field, message)
    return problems


def _setting_problems(data: dict[str, Any]) -> list[str]:
    """lrtrack's checks of the settings: names, values, the metric (``field: message`` lines)."""
    from lrtrack.metrics import SWEEP_METRICS

    problems: list[str] = []
    params = data.get("parameters")
    params = params if isinstance(params, dict) else {}
    fixed = data.get("fixed")
    fixed = fixed if isinstance(fixed, dict) else {}
    if "parameters" in data and isinstance(data["parameters"], dict) and not params:
        problems.append("parameters: at least one parameter is needed")
    for key in params:
        if key not in TRAIN_FIELDS:
            problems.append(f"parameters.{key}: " + _unknown("setting (not a TrainConfig field)", key, TRAIN_FIELDS))
    for key in fixed:
        if key not in TRAIN_FIELDS:
            problems.append(f"fixed.{key}: " + _unknown("setting (not a TrainConfig field)", key, TRAIN_FIELDS))
    for key in sorted(set(params) & set(fixed)):
        problems.append(f"parameters.{key}: set both in parameters and fixed")
    known_fixed = {k: v for k, v in fixed.items() if k in TRAIN_FIELDS}
    fixed_problems = _train_problems(known_fixed)
    # a field's problem reads "fixed.lr: ...", a combination's (no field) "fixed: ..."
    problems += [f"fixed.{line}" if line.split(":")[0] in known_fixed else f"fixed: {line}" for line in fixed_problems]
    base = known_fixed if not fixed_problems else {k: v for k, v in known_fixed.items() if not _train_problems({k: v})}
    base_problems = _train_problems(base) if fixed_problems else []  # a combination hidden by a field's problem
    problems += [f"fixed: {line}" for line in base_problems]
    method = data.get("method", "grid")
    for key, body in params.items():
        if key not in TRAIN_FIELDS or not isinstance(body, dict):
            continue
        values = body.get("values", [])
        candidates = (list(values) if isinstance(values, list) else []) + ([body["value"]] if "value" in body else [])
        candidates += nested_values(body) or []
        seen: list[str] = []
        for value in candidates:
            for line in _train_problems({**base, key: value}):
                if line in base_problems:
                    continue
                message = line.split(": ", 1)[-1] if line.startswith(key + ":") else line
                if message not in seen:
                    seen.append(message)
        problems += [f"parameters.{key}: {message}" for message in seen]
        if method == "grid" and "value" not in body and "values" not in body and "parameters" not in body:
            if body.get("distribution") not in ("int_uniform", "q_uniform"):
                problems.append(f"parameters.{key}: grid search needs 'values' (or 'value'), not a continuous distribution")
    metric = data.get("metric")
    name = metric.get("name", Metric().name) if isinstance(metric, dict) else Metric().name
    if isinstance(name, str) and name not in SWEEP_METRICS:
        hint = suggest(name, SWEEP_METRICS)
        problems.append(f"metric.name: {name!r} is not a metric lrtrack logs" + (f"; did you mean {hint}?" if hint else "")
                        + f" (one of {', '.join(SWEEP_METRICS)})")
    return problems


def nested_values(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Every mapping a nested parameter (W&B's ``{parameters: {width: {values: [32, 64]}}}``,
    e.g. for ``model_args``) can take, as the grid combines them; None when it is not nested
    or a nested parameter is a distribution rather than listed values."""
    import itertools

    nested = body.get("parameters")
    if not isinstance(nested, dict):
        return None
    names, choices = [], []
    for name, inner in nested.items():
        if not isinstance(inner, dict):
            return None
        if "value" in inner:
            options = [inner["value"]]
        elif isinstance(inner.get("values"), list):
            options = list(inner["values"])
        else:
            return None
        names.append(name)
        choices.append(options)
    return [dict(zip(names, combo)) for combo in itertools.product(*choices)]


def _train_problems(values: dict[str, Any]) -> list[str]:
    try:
        TrainConfig(**values)
    except ValidationError as exc:
        return validation_lines(exc)
    return []


def _engine_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """W&B's schema check (``sweeps``) of the W&B part, as (field, message) pairs; a fixed
    setting's problem names ``fixed.KEY``."""
    from sweeps import schema_violations_from_proposed_config

    try:  # the jsonschema validator behind it, for the path of each problem
        from sweeps.config.schema import validator
        schema_errors = list(validator.iter_errors(_wandb_config(data)))
    except ImportError:  # pragma: no cover - a sweeps release that moved it: messages without paths
        schema_errors = []
    config = _wandb_config(data)
    fixed = data.get("fixed") if isinstance(data.get("fixed"), dict) else {}
    params = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    found: list[tuple[str, str]] = []
    messages = set()
    for error in schema_errors:
        path = [str(p) for p in error.absolute_path]
        if path[:1] == ["parameters"] and len(path) > 1 and path[1] in fixed and path[1] not in params:
            path = ["fixed", *path[1:]]
        found.append((".".join(path[:2]) or "spec", f"W&B sweep schema: {error.message}"))
        messages.add(error.message)
    for message in schema_violations_from_proposed_config(config):
        if message in messages:
            continue
        named = re.fullmatch(r"invalid hyperparameter configuration: (\S+)", message)
        if named:
            key = named.group(1)
            field = f"fixed.{key}" if key in fixed and key not in params else f"parameters.{key}"
            if not any(f == field for f, _ in found):
                found.append((field, "W&B's sweep schema rejects it"))
            continue
        found.append(("spec", message))
    return found


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


def flag_name(field: str) -> str:
    """``batch_size`` -> ``--batch-size``: the command-line flag of a settings field
    (`lrtrack.cli.config_options` declares flags by it, `validation_lines` names them by it)."""
    return "--" + field.replace("_", "-")


def negative_flag_name(field: str) -> str:
    """``nesterov`` -> ``--no-nesterov``: the off switch of a ``bool`` field's flag pair."""
    return "--no-" + flag_name(field).removeprefix("--")


def settings_flags(settings: BaseModel) -> list[str]:
    """The command-line flags that rebuild ``settings`` (those not at their default), as
    `lrtrack.cli.config_options` declares them: how a supervisor hands its settings to its
    workers, and a SLURM script to its agents."""
    args: list[str] = []
    for name, value in settings.model_dump(exclude_defaults=True).items():
        if isinstance(value, bool):
            args.append(flag_name(name) if value else negative_flag_name(name))
        else:
            args += [flag_name(name), str(value)]
    return args


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
            name = flag_name(loc[0])
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
    """A SweepSpec from a YAML file in W&B's sweep format (``name`` defaults to the file's
    stem); every problem at once, each naming the file and the field (`spec_problems`)."""
    data = read_yaml(path)
    data.setdefault("name", Path(path).stem)
    problems = spec_problems(data)
    if problems:
        raise UserError([f"{path}: {line}" for line in problems])
    return SweepSpec.model_validate(data, context={"checked": True})
