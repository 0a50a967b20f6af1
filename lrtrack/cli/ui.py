"""``lrtrack ui``: the live web dashboard over the store."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lrtrack.cli import app
from lrtrack.cli.options import StoreOpt
from lrtrack.ui import DEFAULT_HOST, DEFAULT_PORT


@app.command()
def ui(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but loopback requires a token.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
    token: Annotated[Optional[str], typer.Option(help="Access token (default off loopback: a new one, printed once).",
                                                 show_default=False)] = None,
) -> None:
    """Serve a live dashboard of the store's sweeps until Ctrl-C."""
    from lrtrack.cli.display import console
    from lrtrack.ui import serve

    serve(store, host, port, token, lambda line: console.print(line, markup=False, soft_wrap=True))
