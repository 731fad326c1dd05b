"""The operator's endpoints: /readyz and /metrics, and the request timer that feeds the metrics.

/healthz (process alive) is in ``pages``. /metrics answers only a loopback peer that was not proxied (a request
relayed by the reverse proxy carries X-Forwarded-For or Forwarded, so the public never reaches it through the
proxy), unless a bearer token file is configured: then the token is required from everyone.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from ..metrics import CONTENT_TYPE, Metrics
from .accesslog import Observer
from .context import app_context
from .routes_info import route_template
from .security import NO_STORE

WRITE_PROBE_SECONDS = 2.0
_PROXY_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")


def request_timer(metrics: Metrics) -> Observer:
    """What ``AccessLog`` calls once a request is over (the scan hot path included): duration by route template."""

    def observe(scope: Scope, status: int, seconds: float) -> None:
        metrics.request(route_template(scope), scope["method"], status, seconds)

    return observe


async def readyz(request: Request) -> Response:
    """200 when a scan can be taken now: the writer's queue has room and the database takes a write."""
    ctx = app_context(request)
    if ctx.writer.queue_depth >= ctx.writer.queue_bound:
        return _not_ready(f"scan queue full ({ctx.writer.queue_depth} of {ctx.writer.queue_bound})")
    try:  # the outer bound also covers waiting for this process's own writer to let go of the connection
        async with asyncio.timeout(WRITE_PROBE_SECONDS * 2):
            writable = await ctx.service.database_writable(WRITE_PROBE_SECONDS)
    except TimeoutError:
        writable = False
    if not writable:
        return _not_ready("database not writable")
    return PlainTextResponse("ready", headers=NO_STORE)


def _not_ready(reason: str) -> Response:
    return PlainTextResponse(f"not ready: {reason}", status_code=503, headers={**NO_STORE, "Retry-After": "1"})


def _is_local(request: Request) -> bool:
    if any(name in _PROXY_HEADERS for name, _ in request.scope["headers"]):
        return False
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


async def metrics(request: Request) -> Response:
    ctx = app_context(request)
    if ctx.metrics_token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("latin-1"), ctx.metrics_token):
            return PlainTextResponse("a bearer token is required", status_code=401,
                                     headers={**NO_STORE, "WWW-Authenticate": 'Bearer realm="metrics"'})
    elif not _is_local(request):
        return PlainTextResponse("metrics answer local requests only (or set CONTACTCARD_METRICS_TOKEN_FILE)",
                                 status_code=403, headers=NO_STORE)
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE, headers=NO_STORE)


routes: list[BaseRoute] = [
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
