"""The customer's side: /c/{token}, its channel redirects and vCard. Every hit is recorded first.

Every route, and the raw-ASGI fast path for a plain scan, goes through one pipeline, ``track``: resolve the
token, decide the outcome, commit the event, and only then respond. A hit that cannot be committed within the
scan deadline is answered 503 with ``Retry-After`` and nothing is stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import leads, preview, vcard
from ..models import Channel, Company, Outcome, ScanEvent
from ..scans import ScanNotRecorded
from ..service import Resolution, local_day
from ..tokens import TOKEN_PATTERN
from ..visitors import MAX_HEADER, Visitor
from .accesslog import note_visitor
from .context import AppContext, app_context
from .forms import SessionlessRoute
from .routes_info import note_route
from .security import NO_STORE, new_nonce, security_headers

GONE = {Outcome.EXPIRED, Outcome.REVOKED, Outcome.DEPARTED}
log = logging.getLogger(__name__)
CARD_HEADERS = {**NO_STORE, "X-Robots-Tag": "noindex, nofollow"}


@dataclass(frozen=True)
class Hit:
    """A recorded hit: what the link resolved to, the channel followed (if any), whether to answer 431."""

    res: Resolution
    channel: Channel | None
    oversized: bool
    visitor_key: str  # the day's pseudonym of the visitor (per-visitor limits); never an address


@dataclass(frozen=True)
class LeadForm:
    """The contact form's state on a page answering a post: what was typed and what is wrong with it, or a
    notice instead of the form ("sent", "limit")."""

    values: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)  # field (or "form") -> error code
    consent: bool = False
    notice: str | None = None


Decide = Callable[[Resolution], tuple[Outcome, Channel | None]]


def as_resolved(res: Resolution) -> tuple[Outcome, Channel | None]:
    return res.outcome, None


async def track(ctx: AppContext, scope: Scope, token: str, decide: Decide, *, bot: bool = False) -> Hit | None:
    """Resolve, decide, record. None when the hit was not recorded: the caller answers 503. ``bot``: the request
    showed itself a robot (a filled spam trap), whatever its user agent says.

    The scan deadline covers the whole of it: a database locked by another program delays neither the
    answer nor, past the deadline, stores the event.
    """
    deadline = asyncio.get_running_loop().time() + ctx.settings.scan_deadline
    try:
        res = await ctx.service.resolve(token, deadline=deadline)
    except TimeoutError:
        ctx.writer.observer.shed("deadline")
        return None
    outcome, channel = decide(res)
    event, visitor = hit_event(ctx, scope, res, outcome, channel, bot=bot)
    try:
        await ctx.writer.record(event, deadline=deadline)
    except ScanNotRecorded:
        return None
    return Hit(res, channel, visitor.oversized, visitor.key)


def hit_event(ctx: AppContext, scope: Scope, res: Resolution, outcome: Outcome, channel: Channel | None, *,
              bot: bool = False) -> tuple[ScanEvent, Visitor]:
    """The event recording this hit, and who made it (whose pseudonym the access line then carries)."""
    now = ctx.service.clock()
    client = scope.get("client")
    visitor = Visitor.from_headers(scope["headers"], scope["method"], client[0] if client else "",
                                   ctx.visitor_keys, local_day(res.company, now))
    if bot:
        visitor = dataclasses.replace(visitor, is_bot=True, device="bot")
    note_visitor(scope, visitor.key)
    return ctx.service.scan_event(res, outcome, visitor, channel, at=now), visitor


def page_for(request: Request, ctx: AppContext, res: Resolution, token: str, *, status: int | None = None,
             lead: LeadForm | None = None) -> Response:
    """The card page for a live link, else the page with the company's channels (410, or 404). With the company's
    contact form on, the live page carries it, with a fresh signed token; ``lead`` is its state after a post."""
    base = ctx.settings.base_url
    # What a chat app shows when the link is pasted: absolute addresses, the image being the company's.
    shown = {"url": ctx.settings.card_url(token) if token else f"{base}/",
             "image": base + preview.image_path(res.company), "size": "1200x630", "type": "image/png"}
    if res.live and res.company.preview_photo and res.employee is not None and res.employee.photo_sha:
        # The company allows it: the person's photo (256 x 256, see images.photo_jpeg) instead of its image.
        shown.update(image=f"{base}/media/{res.employee.photo_sha}", size="256x256", type="image/jpeg")
    if res.live:
        context: dict[str, object] = {"res": res, "token": token, "preview": shown}
        fresh = None
        if res.company.leads_enabled:
            t = ctx.renderer.translator(request, customer=True)
            context["lead"] = lead or LeadForm()
            context["consent_text"] = consent_text(t.gettext, res.company, t.lang)
            fresh = {"lead_token": ctx.service.leads.form_token(token)}
        return ctx.renderer.page(request, "card/page.html", context, status=status or 200, company=res.company,
                                 headers=CARD_HEADERS, fresh=fresh,
                                 pins=None if lead else (res.company, res.card, res.employee, res.channels))
    code = status or (410 if res.outcome in GONE else 404)
    return ctx.renderer.page(request, "card/gone.html", {"res": res, "token": token, "preview": shown},
                             status=code, company=res.company, headers=CARD_HEADERS)


def consent_text(gettext: Callable[..., str], company: Company, lang: str) -> str:
    """The consent line as the form shows it in ``lang`` (and the entry stores it)."""
    return gettext(leads.CONSENT, company=company.name_for(lang), days=company.retention_days)


def busy(request: Request, ctx: AppContext) -> Response:
    headers = {**CARD_HEADERS, "Retry-After": "1"}
    return ctx.renderer.page(request, "error.html", {"status": 503}, status=503, headers=headers)


Respond = Callable[[Hit], Response]


async def tracked(request: Request, token: str, decide: Decide, respond: Respond) -> Response:
    """A routed hit: the pipeline, then 503 if it was not recorded, 431 for an oversized header, else ``respond``."""
    ctx = app_context(request)
    hit = await track(ctx, request.scope, token, decide)
    if hit is None:
        return busy(request, ctx)
    if hit.oversized:
        raise HTTPException(431)
    return respond(hit)


async def card_page(request: Request) -> Response:
    token = request.path_params["token"]
    return await tracked(request, token, as_resolved,
                         lambda hit: page_for(request, app_context(request), hit.res, token))


async def go(request: Request) -> Response:
    """Follow a channel button. Only a channel the page offered: the target comes from the database."""
    ctx = app_context(request)
    token = request.path_params["token"]
    raw_id = request.path_params["channel"]

    def decide(res: Resolution) -> tuple[Outcome, Channel | None]:
        channel = ctx.service.channel_for(res, int(raw_id)) if raw_id.isdigit() and len(raw_id) < 12 else None
        return (Outcome.CLICK if channel else Outcome.BAD_CHANNEL), channel

    def respond(hit: Hit) -> Response:
        if hit.channel is None:
            return page_for(request, ctx, hit.res, token, status=404 if hit.res.live else None)
        return RedirectResponse(hit.channel.target, status_code=303, headers=CARD_HEADERS)

    return await tracked(request, token, decide, respond)


async def vcard_download(request: Request) -> Response:
    ctx = app_context(request)
    token = request.path_params["token"]
    hit = await track(ctx, request.scope, token, lambda res: (Outcome.VCARD if res.live else res.outcome, None))
    if hit is None:
        return busy(request, ctx)
    if hit.oversized:
        raise HTTPException(431)
    res = hit.res
    if not res.live or res.employee is None:
        return page_for(request, ctx, res, token)
    stored = await ctx.service.media(res.employee.photo_sha) if res.employee.photo_sha else None
    t = ctx.renderer.translator(request, customer=True)
    body = vcard.render(res.employee, res.company, card_url=ctx.settings.card_url(token), channels=res.channels,
                        note=t.gettext("Please contact us through the company's official channels."), lang=t.lang,
                        photo=stored[0] if stored and stored[1] == "image/jpeg" else None)
    return Response(body.encode("utf-8"), media_type="text/vcard; charset=utf-8", headers={
        **CARD_HEADERS, "Content-Disposition": f'attachment; filename="{vcard.filename(res.employee)}"',
        "Vary": "Accept-Language, Cookie", "Content-Language": t.lang,
    })


async def stray(request: Request) -> Response:
    """Anything else under /c/ is still a hit on a link: recorded, answered with the company's channels."""
    return await tracked(request, "", lambda res: (Outcome.MALFORMED, None),
                         lambda hit: page_for(request, app_context(request), hit.res, "", status=404))


_FAST = re.compile("/c/" + TOKEN_PATTERN)


class FastCardPage:
    """The hot path in raw ASGI: a plain ``GET /c/{token}``, the request a QR scan makes.

    The same pipeline and the same page builder as ``card_page``, without the per-request cost of the routing
    and middleware layers (it wraps the whole stack: see ``app.App``). Anything else (a query string, an
    oversized header, another path or method) goes to the ordinary routes. An error before the event is
    committed hands over to them too (they resolve and record it themselves); after it, a bare 500, so an event
    is never recorded twice.
    """

    def __init__(self, app: ASGIApp, csp_tail: bytes) -> None:
        self.app = app
        self.csp_tail = csp_tail  # the policy the stack's ``SecurityHeaders`` sends, after the nonce

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"]
                or _FAST.fullmatch(scope["path"]) is None
                or any(len(value) > MAX_HEADER for _, value in scope["headers"])):
            await self.app(scope, receive, send)
            return
        ctx: AppContext = scope["app"].state.ctx
        note_route(scope, "/c/{token}")  # the route card_page would have matched
        token = scope["path"][3:]
        nonce = new_nonce()
        scope.setdefault("state", {})["csp_nonce"] = nonce
        try:
            hit = await track(ctx, scope, token, as_resolved)
        except Exception:  # nothing was recorded: the ordinary route answers (and records), 503 or 500
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            response = busy(request, ctx) if hit is None else page_for(request, ctx, hit.res, token)
        except Exception:  # recorded, so never handed on (it would be recorded twice): a bare 500
            log.exception("error rendering a card page")
            response = Response(b"Internal Server Error", status_code=500, media_type="text/plain",
                                headers=NO_STORE)
        response.raw_headers.extend(security_headers(nonce, self.csp_tail))
        await response(scope, receive, send)


routes: list[BaseRoute] = [
    Route("/c/{token}", card_page, methods=["GET"]),
    Route("/c/{token}/go/{channel}", go, methods=["GET"]),
    Route("/c/{token}/vcard", vcard_download, methods=["GET"]),
    # Any method under /c/ is a recorded stray hit and nothing else; no session or cookie is read.
    SessionlessRoute("/c/{rest:path}", stray, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    Route("/c", stray, methods=["GET"]),
]
