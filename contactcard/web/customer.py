"""The customer's side: /c/{token}, its channel redirects and vCard. Every hit is recorded first.

The order is the same on every route: resolve the token, decide the answer, commit the event, respond.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import vcard, visitors
from ..models import Channel, Outcome, ScanEvent
from ..scans import LIMITED, MAX_ACCEPT_LANGUAGE, MAX_HEADER, MAX_REFERRER, MAX_USER_AGENT, ScanNotRecorded, crop
from ..service import Resolution
from ..tokens import TOKEN_PATTERN
from .accesslog import note_visitor
from .context import AppContext, app_context
from .security import new_nonce, security_headers

GONE = {Outcome.EXPIRED, Outcome.REVOKED, Outcome.DEPARTED}
log = logging.getLogger(__name__)
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}


async def record(request: Request, ctx: AppContext, res: Resolution, outcome: Outcome,
                 channel: Channel | None = None) -> None:
    """Commit one event for this hit. The raw IP only feeds the daily pseudonym and is then dropped.

    Hits on unknown or malformed links beyond the rate limit are committed as a count, not a row. A request
    with an oversized header is recorded (cropped, as a bot) and then answered 431.
    """
    now = ctx.service.clock()
    raw_headers = request.scope["headers"]
    first = dict(reversed(raw_headers))  # one pass, the first of any repeated header wins (as Headers.get)
    user_agent = first.get(b"user-agent", b"").decode("latin-1")
    ip = request.client.host if request.client else ""
    oversized = any(len(value) > MAX_HEADER for _, value in raw_headers)
    who = visitors.classify(user_agent, request.method)
    key = ctx.service.visitor_key(res.company, now, ip, user_agent)
    note_visitor(request.scope, key)
    overflow = outcome in LIMITED and not ctx.writer.limiter.allow(key, time.monotonic())
    await ctx.writer.record(ScanEvent(
        time=now,
        outcome=outcome,
        card_id=res.card.id if res.card else None,
        employee_id=res.employee.id if res.employee else None,
        channel_id=channel.id if channel else None,
        channel_kind=channel.kind.value if channel else None,
        user_agent=crop(user_agent, MAX_USER_AGENT),
        referrer=crop(first.get(b"referer", b"").decode("latin-1"), MAX_REFERRER),
        accept_language=crop(first.get(b"accept-language", b"").decode("latin-1"), MAX_ACCEPT_LANGUAGE),
        visitor_key=key,
        is_bot=who.is_bot or oversized,
        device="bot" if oversized else who.device,
        os=who.os,
        browser=who.browser,
    ), overflow=overflow)
    if oversized:
        raise HTTPException(431)


def page_for(request: Request, ctx: AppContext, res: Resolution, token: str, *, status: int | None = None) -> Response:
    if res.live:
        return ctx.renderer.page(request, "card/page.html", {"res": res, "token": token},
                                 status=status or 200, company=res.company, headers=NO_STORE,
                                 pins=(res.company, res.card, res.employee, res.channels))
    code = status or (410 if res.outcome in GONE else 404)
    return ctx.renderer.page(request, "card/gone.html", {"res": res, "token": token},
                             status=code, company=res.company, headers=NO_STORE)


def busy(request: Request, ctx: AppContext) -> Response:
    headers = {**NO_STORE, "Retry-After": "1"}
    return ctx.renderer.page(request, "error.html", {"status": 503}, status=503, headers=headers)


async def card_page(request: Request) -> Response:
    ctx = app_context(request)
    token = request.path_params["token"]
    res = await ctx.service.resolve(token)
    try:
        await record(request, ctx, res, res.outcome)
    except ScanNotRecorded:
        return busy(request, ctx)
    return page_for(request, ctx, res, token)


async def go(request: Request) -> Response:
    """Follow a channel button. Only a channel the page offered: the target comes from the database."""
    ctx = app_context(request)
    token = request.path_params["token"]
    res = await ctx.service.resolve(token)
    raw_id = request.path_params["channel"]
    channel = ctx.service.channel_for(res, int(raw_id)) if raw_id.isdigit() and len(raw_id) < 12 else None
    try:
        await record(request, ctx, res, Outcome.CLICK if channel else Outcome.BAD_CHANNEL, channel)
    except ScanNotRecorded:
        return busy(request, ctx)
    if channel is None:
        return page_for(request, ctx, res, token, status=404 if res.live else None)
    return RedirectResponse(channel.target, status_code=303, headers=NO_STORE)


async def vcard_download(request: Request) -> Response:
    ctx = app_context(request)
    token = request.path_params["token"]
    res = await ctx.service.resolve(token)
    try:
        await record(request, ctx, res, Outcome.VCARD if res.live else res.outcome)
    except ScanNotRecorded:
        return busy(request, ctx)
    if not res.live or res.employee is None:
        return page_for(request, ctx, res, token)
    body = vcard.render(res.employee, res.company, card_url=ctx.settings.card_url(token), channels=res.channels)
    return Response(body.encode("utf-8"), media_type="text/vcard; charset=utf-8", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="{vcard.filename(res.employee)}"',
    })


async def stray(request: Request) -> Response:
    """Anything else under /c/ is still a hit on a link: recorded, answered with the company's channels."""
    ctx = app_context(request)
    res = await ctx.service.resolve("")
    try:
        await record(request, ctx, res, Outcome.MALFORMED)
    except ScanNotRecorded:
        return busy(request, ctx)
    return page_for(request, ctx, res, "", status=404)


_FAST = re.compile("/c/" + TOKEN_PATTERN)
_FAST_HEADERS = [(b"content-type", b"text/html; charset=utf-8"), (b"vary", b"Accept-Language, Cookie"),
                 *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in NO_STORE.items())]


class FastCardPage:
    """The hot path in raw ASGI: a plain ``GET /c/{token}`` of a live card, the request a QR scan makes.

    Same steps and the same answer as ``card_page`` (resolve, commit the event, render), without the
    per-request cost of the routing and middleware layers (it wraps the whole stack: see ``app.App``).
    Anything else, and any live-card hit that cannot be answered here (a query string, an oversized header,
    an error before the event is committed), goes to the ordinary routes, which resolve and record it themselves:
    an event is never recorded twice, because the fast path hands over only when it committed nothing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"]
                or _FAST.fullmatch(scope["path"]) is None
                or any(len(value) > MAX_HEADER for _, value in scope["headers"])):
            await self.app(scope, receive, send)
            return
        ctx: AppContext = scope["app"].state.ctx
        token = scope["path"][3:]
        request = Request(scope)
        nonce = new_nonce()
        try:
            res = await ctx.service.resolve(token)
            if res.live:
                await record(request, ctx, res, Outcome.VIEW)
        except ScanNotRecorded:  # full queue or failed commit: 503 at once (a second try would wait again)
            scope.setdefault("state", {})["csp_nonce"] = nonce
            response = busy(request, ctx)
            response.raw_headers.extend(security_headers(nonce))
            await response(scope, receive, send)
            return
        except Exception:  # nothing was recorded: the ordinary route answers (and records), 503 or 500
            res = None
        if res is None or not res.live:
            await self.app(scope, receive, send)
            return
        try:
            scope.setdefault("state", {})["csp_nonce"] = nonce
            html, lang = ctx.renderer.html(request, "card/page.html", {"res": res, "token": token},
                                           company=res.company, pins=(res.company, res.card, res.employee,
                                                                      res.channels))
            body = html.encode("utf-8")
            status, headers = 200, [(b"content-length", str(len(body)).encode("ascii")), *_FAST_HEADERS,
                                    (b"content-language", lang.encode("ascii"))]
        except Exception:  # recorded, so never handed on (it would be recorded twice): a bare 500
            log.exception("error rendering %s", scope["path"])
            body, status = b"Internal Server Error", 500
            headers = [(b"content-length", b"21"), (b"content-type", b"text/plain; charset=utf-8"),
                       (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": status, "headers": headers + security_headers(nonce)})
        await send({"type": "http.response.body", "body": body})


routes: list[BaseRoute] = [
    Route("/c/{token}", card_page, methods=["GET"]),
    Route("/c/{token}/go/{channel}", go, methods=["GET"]),
    Route("/c/{token}/vcard", vcard_download, methods=["GET"]),
    Route("/c/{rest:path}", stray, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    Route("/c", stray, methods=["GET"]),
]
