"""Command-line options derived from pydantic models: each setting is declared once, as a field.

`settings_options(TrainConfig)` turns every field into one ``--flag``: the name with
dashes (``batch_size`` -> ``--batch-size``), the field's type (a ``Literal``'s choices
are the metavar, a ``bool`` is a ``--flag/--no-flag`` pair, a mapping is YAML text), its description as help and its
default shown in ``--help``. A new TrainConfig field is therefore a flag of every
command that trains (``lrtrack train``, ``lrtrack lr-find``) without a second declaration.

The flags themselves default to None ("not given"), so that ``--config`` YAML values
are overridden only by flags the user typed; the model's own default applies when
neither sets a value (and ``--help`` shows it).

`with_options` attaches such options to a Typer command: the command is written with
its own ``Annotated`` parameters plus one ``dict`` parameter per model, which receives
the flags that were given, keyed by field name::

    @app.command()
    @with_options(settings=TrainConfig)
    def train(settings: dict[str, Any], project: Annotated[str, typer.Option()] = "lrtrack") -> None: ...
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Optional, TypeVar

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lrtrack.config import flag_name, negative_flag_name
from lrtrack.formatting import format_value

if TYPE_CHECKING:
    from lrtrack.config import TrainConfig

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Python types a flag can take directly; any other field type is read as YAML text.
_SCALARS = (bool, int, float, str)


def settings_options(model: type[BaseModel], *, panel: str | None = None) -> list[inspect.Parameter]:
    """One keyword-only ``Annotated[..., typer.Option(...)]`` parameter per field of ``model``."""
    return [_option(name, field, panel) for name, field in model.model_fields.items()]


def _option(name: str, field: FieldInfo, panel: str | None) -> inspect.Parameter:
    kind = _flag_type(field.annotation)
    decls = [f"{flag_name(name)}/{negative_flag_name(name)}"] if kind is bool else [flag_name(name)]
    extra: dict[str, Any] = {}
    if typing.get_origin(kind) is Literal:
        # The choices are shown as the metavar and checked by the model, like every other value,
        # so a wrong one is the same one-line error naming the flag (see `validation_lines`).
        kind, extra = str, {"metavar": "|".join(str(choice) for choice in typing.get_args(kind))}
    elif kind is None:  # a structured value (a mapping, a list...): YAML text, checked by the model
        kind, extra = Any, {"parser": _yaml_value, "metavar": "YAML"}
    default = field.get_default(call_default_factory=True)
    option = typer.Option(
        *decls,
        help=field.description or "",
        show_default=format_value(default) if default is not None else False,
        rich_help_panel=panel,
        **extra,
    )
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[kind], option])


def _flag_type(annotation: Any) -> Any:
    """The flag's type for a field annotation: a scalar or a ``Literal`` (its choices), ``X`` for
    ``X | None``; None when the value is structured."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _flag_type(args[0])
    if typing.get_origin(annotation) is Literal or annotation in _SCALARS:
        return annotation
    return None


def _yaml_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"not valid YAML ({getattr(exc, 'problem', None) or exc})") from None


def with_options(**models: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a Typer command the options of each model; ``name=Model`` fills the command's ``name``
    parameter with ``{field: value}`` for the flags given. Models must not share field names."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(func, eval_str=True)
        kept = [p for p in own.parameters.values() if p.name not in models]
        generated: dict[str, list[inspect.Parameter]] = {
            key: settings_options(model, panel=model.__name__) for key, model in models.items()
        }
        names = [p.name for p in kept] + [p.name for params in generated.values() for p in params]
        if len(names) != len(set(names)):
            raise TypeError(f"{func.__name__}: option names clash: {sorted({n for n in names if names.count(n) > 1})}")

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            for key, params in generated.items():
                values = {p.name: kwargs.pop(p.name) for p in params}
                kwargs[key] = {name: value for name, value in values.items() if value is not None}
            return func(**kwargs)

        parameters = kept + [p for params in generated.values() for p in params]
        command.__signature__ = own.replace(parameters=parameters)  # what Typer reads
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        return command

    return decorate


def settings_from(model: type[ModelT], flags: dict[str, Any]) -> ModelT:
    """``model`` built from the typed ``flags``, or `UserError` naming each bad ``--flag``."""
    from pydantic import ValidationError

    from lrtrack.config import validation_lines
    from lrtrack.errors import UserError

    try:
        return model(**flags)
    except ValidationError as exc:
        raise UserError(validation_lines(exc, flags=True)) from None


def train_config_from(config_file: Optional[Path], flags: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of a command: ``--config`` YAML (if given) with the typed ``flags`` on top."""
    from lrtrack.config import load_train_config, make_train_config

    if config_file is not None:
        return load_train_config(config_file, flags)
    return make_train_config(flags, flags=True)


#: ``--config FILE``: the option every command that takes TrainConfig flags shares.
ConfigFileOpt = Annotated[
    Optional[Path],
    typer.Option("--config", help="YAML file of TrainConfig settings; flags override it.", show_default=False),
]
