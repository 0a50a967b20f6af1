"""The dashboard's web application (Starlette): pages, a JSON API, CSV export and sweep actions.

Security (see README "lrtrack ui"):
- bound to a non-loopback address, every request needs the access token (``?token=``
  once, which sets a cookie, or ``Authorization: Bearer TOKEN``), else 401;
- actions (pause / resume / cancel) are POSTs that must carry the page's CSRF token in the
  ``X-CSRF-Token`` header (a page of another site cannot read it) and, when the browser
  sends an ``Origin``, come from this host;
- the store URL is never shown, only the sweeps in it; errors are one generic line.
"""

from __future__ import annotations

import gzip
import hmac
import secrets
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from lrtrack.errors import LrtrackError
from lrtrack.states import State

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from lrtrack.store import Store

TOKEN_COOKIE = "lrtrack_token"
#: plotly.js is cached by browsers for a year and never revalidated: its URL names the plotly version, so
#: an upgraded package is a new URL (a later view of a page reads it from the cache, and V8 keeps its compiled code)
STATIC_CACHE = "max-age=31536000, immutable"
ACTIONS = {"pause": State.PAUSED, "resume": State.RUNNING, "cancel": State.CANCELLED}


def plotly_path() -> str:
    """The path plotly.js is served at: ``/static/plotly-VERSION.min.js``, the installed plotly's version."""
    from importlib.metadata import version

    return f"/static/plotly-{version('plotly')}.min.js"


def create_app(store: Store, token: str | None = None) -> Starlette:
    """The dashboard over ``store``; with ``token``, every request must present it."""
    import jinja2
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from lrtrack.sweep import set_state
    from lrtrack.ui import data

    templates = jinja2.Environment(loader=jinja2.PackageLoader("lrtrack.ui", "templates"), autoescape=True)
    csrf = secrets.token_urlsafe(24)
    reader = data.SweepReader(store)  # one per dashboard: polls reuse what it read
    plotly_js = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    plotly_url = plotly_path()
    plotly_gzipped = gzip.compress(plotly_js.read_bytes(), compresslevel=6, mtime=0)  # once, at start: 0.1 s

    # Handlers that read or write the store are plain functions: Starlette runs them in its thread
    # pool, so a big sweep being computed does not hold up other requests (the sweeps page, plotly.js).

    def page(name: str, **context) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(csrf=csrf, plotly_url=plotly_url, **context))

    async def sweeps_page(request: Request) -> Response:
        return page("sweeps.html")

    def sweep_page(request: Request) -> Response:
        sweep_id = request.path_params["sweep_id"]
        store.get_sweep(sweep_id)  # unknown id: 404 below
        return page("sweep.html", sweep_id=sweep_id)

    def api_sweeps(request: Request) -> Response:
        return JSONResponse(data.sweeps_overview(store))

    def api_sweep(request: Request) -> Response:
        tag, body = reader.detail_page(request.path_params["sweep_id"])
        headers = {"ETag": tag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == tag:  # the page's poll of an unchanged sweep: nothing to send
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    def api_run_history(request: Request) -> Response:
        params = request.path_params
        return JSONResponse(data.run_history(store, params["sweep_id"], int(params["number"])))

    def csv_export(request: Request) -> Response:
        sweep_id = request.path_params["sweep_id"]
        text = data.table_csv(reader.study(sweep_id))
        return PlainTextResponse(text, media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{sweep_id}.csv"'})

    def action(request: Request) -> Response:
        if not hmac.compare_digest(request.headers.get("x-csrf-token", ""), csrf):
            return PlainTextResponse("missing or wrong CSRF token", status_code=403)
        origin = request.headers.get("origin")
        if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
            return PlainTextResponse("cross-site request refused", status_code=403)
        name = request.path_params["action"]
        if name not in ACTIONS:
            return PlainTextResponse(f"unknown action {name}", status_code=404)
        sweep = set_state(store, request.path_params["sweep_id"], ACTIONS[name])
        return JSONResponse({"id": sweep.id, "state": sweep.state})

    async def plotly(request: Request) -> Response:
        headers = {"Cache-Control": STATIC_CACHE, "Vary": "Accept-Encoding"}
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return FileResponse(plotly_js, media_type="application/javascript", headers=headers)
        # 4.8 MB, sent as 1.5 MB; compressed once (the middleware compressed it again at every request,
        # to 1.7 MB at its level 1), and the middleware passes a gzipped answer as it is
        return Response(plotly_gzipped, media_type="application/javascript", headers={**headers, "Content-Encoding": "gzip"})

    class TokenRequired(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next):
            if token is None:
                return await call_next(request)
            given = (request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)
                     or request.headers.get("authorization", "").removeprefix("Bearer ").strip())
            if not given or not hmac.compare_digest(given, token):
                return PlainTextResponse("401: this dashboard needs its access token (?token=...)", status_code=401)
            response = await call_next(request)
            if request.query_params.get("token"):
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return response

    class OneLineErrors(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next):
            try:
                return await call_next(request)
            except LrtrackError as exc:  # unknown sweep id, a state change that is not allowed, the store down
                status = 404 if "unknown sweep" in str(exc) else 409
                return PlainTextResponse(str(exc).splitlines()[0], status_code=status)

    routes = [
        Route("/", sweeps_page),
        Route("/sweeps/{sweep_id}", sweep_page),
        Route("/sweeps/{sweep_id}/results.csv", csv_export),
        Route("/api/sweeps", api_sweeps),
        Route("/api/sweeps/{sweep_id}", api_sweep),
        Route("/api/sweeps/{sweep_id}/runs/{number:int}", api_run_history),
        Route("/api/sweeps/{sweep_id}/{action}", action, methods=["POST"]),
        Route(plotly_url, plotly),
    ]
    # gzip level 1: a 10,000-run sweep's 12 MB page becomes 1.5 MB in 0.04 s (level 9: 1.2 MB in 0.4 s)
    middleware = [Middleware(GZipMiddleware, minimum_size=1024, compresslevel=1), Middleware(TokenRequired),
                  Middleware(OneLineErrors)]
    return Starlette(routes=routes, middleware=middleware)

