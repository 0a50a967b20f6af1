"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

StoreOpt = Annotated[
    Optional[str],
    typer.Option("--store", help="Store URL: sqlite:///path or postgresql://... (default $LRTRACK_STORE or .lrtrack/store.db).",
                 show_default=False),
]
SweepIdArg = Annotated[str, typer.Argument(help="Sweep id (as printed by `lrtrack sweep create`).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", help="Show W&B's own console output (banners, run summaries).")]
WideOpt = Annotated[bool, typer.Option("--wide", help="Every column (the default table fits 80 columns).")]
