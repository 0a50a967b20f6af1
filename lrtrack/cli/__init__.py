"""The ``lrtrack`` command line: thin Typer commands that hand off to library functions.

Errors are caught here and only here: a usage mistake (unknown command or flag, a
missing value) prints the usage line and the problem and exits 2, as does a
`UserError` (one line per problem); any other `LrtrackError` prints one line and
exits 1; Ctrl-C exits 130, SIGTERM 143.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import warnings

import typer
from rich.console import Console

from lrtrack import __version__
from lrtrack.errors import LrtrackError, LrtrackWarning, UserError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    name="lrtrack",
    help="Learning-rate studies with W&B sweeps, online or fully offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lrtrack {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Learning-rate studies with W&B sweeps, online or fully offline."""


def _register() -> None:
    from lrtrack.cli import train  # noqa: F401  (commands register themselves on `app`)

    for name in ("sweep", "agent", "report", "sync", "reproduce", "lr_find", "ui", "slurm"):
        try:
            __import__(f"lrtrack.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"lrtrack.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    # W&B's `sweeps` package still uses pydantic v1-style config keys; its warning is noise here.
    warnings.filterwarnings("ignore", message="Valid config keys have changed in V2")
    _show_lrtrack_warnings_as_one_line()
    _register()
    try:
        code = app(args=argv, prog_name="lrtrack", standalone_mode=False)
    except UserError as exc:
        for line in exc.problems:
            err_console.print(f"error: {line}", markup=False)
        code = 2
    except LrtrackError as exc:
        err_console.print(f"error: {exc}", markup=False)
        code = 1
    except typer.TyperException as exc:  # typer's usage errors (unknown command or option, missing value...)
        _show_usage_error(exc, sys.argv[1:] if argv is None else argv)
        code = getattr(exc, "exit_code", 2)
    except (KeyboardInterrupt, typer.Abort) as exc:
        interrupt = exc.__cause__ or exc  # typer wraps KeyboardInterrupt in Abort
        code = getattr(interrupt, "exit_code", 130)  # 128 + signal for SIGTERM/SIGUSR1 (lrtrack.agent.signals.Terminated)
        err_console.print("interrupted" if code == 130 else "terminated")  # the message, not a state
    code = code if isinstance(code, int) else 0
    if argv is None and "torch" in sys.modules:
        _exit_now(code)
    sys.exit(code)


def _show_usage_error(exc: Exception, argv: list[str]) -> None:
    """The usage line and the problem, as typer prints them in standalone mode.

    An option missing its value (``lrtrack train --lr``) fails before typer has a
    context for the command, so its usage line is rebuilt from the command path in ``argv``.
    """
    if getattr(exc, "ctx", None) is None:
        err_console.print(_usage_for(argv), markup=False)
    show = getattr(exc, "show", None)
    if callable(show):
        show()
    else:
        err_console.print(f"Error: {exc}", markup=False)


def _usage_for(argv: list[str]) -> str:
    command, path = typer.main.get_command(app), ["lrtrack"]
    for token in argv:
        sub = getattr(command, "commands", {}).get(token)
        if sub is None:
            break
        command, path = sub, [*path, token]
    ctx = command.make_context(" ".join(path), [], resilient_parsing=True)
    return f"{ctx.get_usage()}\nTry '{' '.join(path)} --help' for help.\n"


def _finish_wandb_runs(code: int) -> None:
    """Finish every W&B run still open with the process's real exit code.

    W&B learns the exit code from ``sys.exit``; skipping it, its exit handler would
    close a run that an agent had no chance to finish (a signal during ``wandb.init``)
    as "finished, exit 0".
    """
    if "wandb" not in sys.modules:
        return
    from wandb.sdk import wandb_setup

    singleton = getattr(wandb_setup, "_singleton", None)
    for run in list(getattr(singleton, "_active_runs", None) or []):
        try:
            run.finish(exit_code=code)
        except Exception:  # noqa: BLE001 - exiting anyway: W&B's own handler gets the next chance
            pass


def _show_lrtrack_warnings_as_one_line() -> None:
    """`LrtrackWarning` is printed as ``warning: ...``, without Python's file and line."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, LrtrackWarning):
            err_console.print(f"warning: {message}", markup=False)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _exit_now(code: int) -> None:
    """Exit without tearing the interpreter down module by module.

    Finalizing torch, torchvision, matplotlib and wandb takes 0.5-1.7 s per
    process, paid by every agent and ``lrtrack train``. Nothing is lost by
    skipping it: store transactions are committed, W&B runs still open are finished
    with ``code`` (`_finish_wandb_runs`), and the exit handlers (W&B's teardown among
    them) still run; then the streams are flushed and the process ends, unless a
    non-daemon thread is still working.
    Only for the console script (``argv is None``): an in-process caller keeps a
    normal `SystemExit`.
    """
    _finish_wandb_runs(code)
    atexit._run_exitfuncs()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)  # a thread that must finish its work: the normal, slower exit waits for it
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
