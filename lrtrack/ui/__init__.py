"""``lrtrack ui``: a live web dashboard over the sweep store, for clusters with no W&B server.

`serve` checks the address, opens the app (`lrtrack.ui.app`) over an existing store and
runs it with uvicorn until Ctrl-C. What each page shows is computed in `lrtrack.ui.data`.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from typing import Callable

from lrtrack.errors import UserError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``: the addresses only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def access_token(host: str, token: str | None) -> str | None:
    """The token requests must carry: the given one, a new one off loopback, or None on loopback."""
    if token is not None:
        if len(token) < 16:
            raise UserError("--token: use at least 16 characters")
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def check_port(host: str, port: int) -> None:
    """One clear line when the address cannot be bound (port in use, no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(f"--host/--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def serve(store_url: str | None, host: str, port: int, token: str | None, say: Callable[[str], None]) -> None:
    """Serve the dashboard over the existing store at ``store_url`` until Ctrl-C."""
    import uvicorn

    from lrtrack.store import open_store
    from lrtrack.ui import data
    from lrtrack.ui.app import create_app

    token = access_token(host, token)
    check_port(host, port)
    with open_store(store_url, create=False) as store:
        store.list_sweeps()  # an unreachable store fails here, with one line
        data.warm_up()
        if hasattr(os, "nice"):  # on a machine shared with agents, the dashboard's computing yields to them
            os.nice(10)
        app = create_app(store, token)
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
        say(f"lrtrack ui: serving store {store.url} at {url}")
        if token:
            say("the token is printed only this once; requests without it get 401")
        say("press Ctrl-C to stop")
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
