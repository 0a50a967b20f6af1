"""User code by reference: ``package.module:callable`` or an entry-point name.

A setting such as ``model`` names either one of lrtrack's built-ins, an import
reference ``package.module:callable`` (importable where the run trains: installed,
or a module in the current directory, which is on the import path as with
``python -m``), or a name an installed distribution registers under an
entry-point group (``lrtrack.models``, ``lrtrack.datasets``). A `Kind` describes one
such setting: `MODELS` and `DATASETS`.

- a model callable is called as ``callable(input_shape, num_classes, **model_args)`` and
  returns a ``torch.nn.Module`` giving ``(batch, num_classes)`` logits;
- a dataset callable is called like torchvision's dataset classes,
  ``callable(root=DATA_DIR, train=True|False, **dataset_args)``, ``root`` and ``train``
  passed only where its signature takes them (`build_user_dataset`), and returns a
  ``torch.utils.data.Dataset`` of ``(input, label)`` items (`lrtrack.data` converts them).

`check_references` builds every referenced model and dataset of some configs on one
real batch: what ``lrtrack train`` and ``lrtrack sweep create`` do before anything is
written.

Trust: configs, the sweep store and W&B hold only these strings and their
arguments, never code; resolving one imports *installed* code on this machine.
Whoever can write the store chooses which installed code agents import.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Any, Callable

from lrtrack.errors import UserError


@dataclass(frozen=True)
class Kind:
    """One referenceable setting: its field name, built-in names and entry-point group."""

    field: str
    builtins: tuple[str, ...]
    group: str


#: ``model``: `lrtrack.models.build_model`'s built-ins, or user code (see `build_user_model`).
MODELS = Kind(field="model", builtins=("fcn", "mlp2", "cnn", "cnn-small"), group="lrtrack.models")
#: ``dataset``: `lrtrack.data`'s built-ins, or a dataset class/callable (see `build_user_dataset`).
DATASETS = Kind(field="dataset", builtins=("mnist", "fashion-mnist", "digits"), group="lrtrack.datasets")


def is_builtin(kind: Kind, value: str) -> bool:
    return value in kind.builtins


def resolve(kind: Kind, value: str) -> Callable[..., Any]:
    """The callable ``value`` refers to (not a built-in), or ValueError saying why it cannot be had."""
    if ":" in value:
        return _import_reference(value)
    return _entry_point(kind, value)


def _import_reference(value: str) -> Callable[..., Any]:
    module_name, _, attribute = value.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{value!r} is not an import reference of the form package.module:callable")
    _cwd_on_path()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or the module's own code failing
        raise ValueError(f"cannot import {module_name!r} for {value!r} ({first_line(exc)})") from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"{value!r}: module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise ValueError(f"{value!r} is not callable")
    return target


def _entry_point(kind: Kind, value: str) -> Callable[..., Any]:
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=kind.group) if ep.name == value]
    if not found:
        registered = sorted(ep.name for ep in entry_points(group=kind.group))
        others = f"; registered: {', '.join(registered)}" if registered else ""
        raise ValueError(
            f"{value!r} is neither a built-in {kind.field} ({', '.join(kind.builtins)}), an import reference "
            f"(package.module:callable) nor a name registered under entry-point group {kind.group!r}{others}"
        )
    try:
        target = found[0].load()
    except Exception as exc:
        raise ValueError(f"entry point {value!r} ({found[0].value}) does not load ({first_line(exc)})") from None
    if not callable(target):
        raise ValueError(f"entry point {value!r} ({found[0].value}) is not callable")
    return target


def _cwd_on_path() -> None:
    """The current directory importable, as ``python -m`` makes it (the CLI's entry script does not)."""
    if "" not in sys.path and "." not in sys.path:
        import os

        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.insert(0, cwd)


def first_line(exc: BaseException) -> str:
    """``TypeName: first line of the message``: how an error of user code is quoted in one line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def build_user_model(reference: str, input_shape: tuple[int, ...], num_classes: int, model_args: dict[str, Any]):
    """``callable(input_shape, num_classes, **model_args)`` for a referenced model; `UserError`
    naming ``model`` and the reference when the call raises or returns no ``nn.Module``."""
    from torch import nn

    factory = resolve(MODELS, reference)
    try:
        model = factory(tuple(input_shape), num_classes, **model_args)
    except Exception as exc:
        raise UserError(f"model: {reference}({tuple(input_shape)}, {num_classes}, **{model_args!r}) "
                        f"raised {first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"model: {reference} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def check_model_output(reference: str, model, batch, num_classes: int) -> None:
    """`UserError` naming ``model`` unless ``model(batch)`` gives ``(len(batch), num_classes)`` logits."""
    import torch

    try:
        with torch.no_grad():
            out = model(batch)
    except Exception as exc:
        raise UserError(f"model: {reference} failed on a batch of shape {tuple(batch.shape)} ({first_line(exc)})") from None
    expected = (len(batch), num_classes)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UserError(f"model: {reference} gave {got} on a batch of shape {tuple(batch.shape)}; "
                        f"expected logits of shape {expected} (batch, num_classes)")


def build_user_dataset(reference: str, root: str, train: bool | None, dataset_args: dict[str, Any]):
    """``callable(root=root, train=train, **dataset_args)`` for a referenced dataset, ``root``
    and ``train`` passed only where the signature takes them (``train`` None: not passed);
    `UserError` naming ``dataset`` when the call raises or returns no sized ``Dataset``."""
    factory = resolve(DATASETS, reference)
    kwargs = dict(dataset_args)
    if accepts(factory, "root"):
        kwargs.setdefault("root", root)
    if train is not None:
        kwargs.setdefault("train", train)
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    try:
        dataset = factory(**kwargs)
    except Exception as exc:
        raise UserError(f"dataset: {reference}({shown}) raised {first_line(exc)}") from None
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise UserError(f"dataset: {reference}({shown}) returned {type(dataset).__name__}, "
                        "not a map-style torch.utils.data.Dataset (with __getitem__ and __len__)")
    return dataset


def accepts(factory: Callable[..., Any], name: str) -> bool:
    """True when ``factory`` takes a keyword argument ``name`` (or any keyword: ``**kwargs``).
    A signature that cannot be read (some built-in callables) counts as taking it."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return True
    if name in parameters:
        return parameters[name].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def check_references(configs) -> None:
    """Build every referenced dataset and model of ``configs`` on one real batch, before
    anything is written: `UserError` naming the field (``dataset`` or ``model``) and the
    reference when one does not import, raises, has items that are not ``(input, label)``
    or gives logits that are not ``(batch, num_classes)``.

    Each distinct dataset (reference, arguments, data directory) is opened once, with a
    tiny subset decoded on the CPU; each distinct model (with its arguments) is built once
    per dataset. Configs with only built-ins are skipped: there is nothing to check.
    """
    import torch

    from lrtrack.data import load_data
    from lrtrack.models import build_model

    datas: dict[tuple, Any] = {}
    seen: set[tuple] = set()
    for config in configs:
        user_data = not is_builtin(DATASETS, config.dataset)
        if not user_data and is_builtin(MODELS, config.model):
            continue
        data_key = (config.dataset, repr(sorted(config.dataset_args.items())), config.data_dir)
        if data_key not in datas:
            tiny = config.model_copy(update={"train_size": 4, "test_size": 4, "val_split": 0.0, "seed": 0,
                                             "data_path": "resident"})
            datas[data_key] = load_data(tiny, torch.device("cpu"))
        key = (config.model, repr(sorted(config.model_args.items())), config.hidden, data_key)
        if key in seen:
            continue
        seen.add(key)
        data = datas[data_key]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            try:
                model = build_model(config, data.input_shape, data.num_classes)
            except UserError:
                raise
            except Exception as exc:  # a built-in model that cannot take this input
                raise UserError(f"model: {config.model} cannot be built for input shape {data.input_shape} "
                                f"of dataset {config.dataset} ({first_line(exc)})") from None
            model.train()
            check_model_output(config.model, model, data.train.x[: min(config.batch_size, 4)], data.num_classes)
