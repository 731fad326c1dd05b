"""The employee's own page, /me: their QR, link, expiry and scans; a fresh link; installable, works offline.

Only the signed-in employee's own card is ever shown or changed here. QR images live at
``/me/qr/{card_id}-{generation}.svg|png``: the URL changes with every rotation, so they are cached for a year
(privately); any other card, an old generation or a revoked card answers 404.

The service worker (``/sw.js``, scope ``/me``) keeps the last /me page and its QR for offline use. Each /me
response names its current QR in ``X-Card-QR`` (empty when there is no live card); the worker replaces its
cache with every successful load and drops QR images that are no longer named, so a rotated or revoked link
stops showing once the page has been loaded online again. ``X-Card-State`` says which: ``live``, ``expired``,
``revoked`` (the page says when, and to ask an administrator) or ``none`` (never had a card).
"""

from __future__ import annotations

import functools
import io
import json
import re

from PIL import Image, ImageDraw
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .. import qr
from ..models import Card, ContactcardError, Employee, User
from ..service import local_time
from .context import app_context
from .forms import FormRoute
from .security import NO_STORE
from .session import require_user, template_context

_QR_NAME = re.compile(r"(\d{1,12})-(\d{1,9})\.(svg|png)")
PRIVATE_IMMUTABLE = "private, max-age=31536000, immutable"
THEME = "#111827"


def qr_path(card: Card, ext: str = "svg") -> str:
    return f"/me/qr/{card.id}-{card.generation}.{ext}"


async def _employee(request: Request, user: User) -> Employee | None:
    if user.employee_id is None:
        return None
    return await app_context(request).service.employee(user.employee_id)


async def me_page(request: Request, *, error: str = "", status: int = 200) -> Response:
    user = await require_user(request)
    ctx = app_context(request)
    svc = ctx.service
    company = await svc.company()
    employee = await _employee(request, user)
    issued = None if employee is None else await svc.current_card(employee.id)
    # No open card: the newest one says whether an administrator revoked it (and when) or there never was one.
    latest = None if employee is None or issued is not None else await svc.latest_card(employee.id)
    now = svc.clock()
    live = issued is not None and issued.card.is_live(now)
    expiring = live and issued is not None and issued.card.expires_at - now <= company.expiry_notice
    counts = None if employee is None else await svc.scan_counts(employee.id)
    chats = [] if employee is None else await ctx.webhooks.chat_destinations()
    chat_optin = None if not chats or employee is None else await ctx.webhooks.chat_optin(employee.id)
    expires_local = None if issued is None else local_time(company, issued.card.expires_at)
    revoked_at = None if latest is None or latest.revoked_at is None else local_time(company, latest.revoked_at)
    state = ("live" if live else "expired" if issued is not None else "revoked" if revoked_at is not None
             else "none")
    current_qr = qr_path(issued.card) if live and issued is not None else ""
    return ctx.renderer.page(
        request, "me/page.html",
        {**template_context(request, user), "employee": employee, "issued": issued, "live": live, "state": state,
         "expiring": expiring,
         "qr_svg": current_qr, "qr_png": qr_path(issued.card, "png") if live and issued is not None else "",
         "expires_local": expires_local, "revoked_local": revoked_at, "counts": counts, "error": error,
         "saved_at": local_time(company, now), "chats": chats, "chat_optin": chat_optin},
        status=status, company=company,
        headers={**NO_STORE, "X-Card-QR": current_qr, "X-Card-State": state, "Vary": "Cookie, Accept-Language"},
    )


async def me(request: Request) -> Response:
    return await me_page(request)


async def rotate(request: Request, user: User, form: FormData) -> Response:
    employee = await _employee(request, user)
    if employee is None:
        raise HTTPException(403)
    try:
        await app_context(request).service.rotate_card(employee.id, actor=user.email)
    except ContactcardError:
        t = app_context(request).renderer.translator(request)
        return await me_page(request, status=409, error=t.gettext(
            "There is no link to replace. Ask an administrator to issue one."))
    return RedirectResponse("/me?rotated=1", status_code=303, headers=NO_STORE)


async def notify(request: Request, user: User, form: FormData) -> Response:
    """Opt in to (or out of) a chat notification when a customer taps a channel or saves the contact."""
    employee = await _employee(request, user)
    if employee is None:
        raise HTTPException(403)
    raw = form.get("endpoint")
    choice = raw.strip() if isinstance(raw, str) else ""
    if choice and (not choice.isascii() or not choice.isdigit() or len(choice) > 12):
        raise HTTPException(400)
    try:
        await app_context(request).webhooks.set_chat_optin(employee.id, int(choice) if choice else None,
                                                           actor=user.email)
    except ContactcardError:
        t = app_context(request).renderer.translator(request)
        return await me_page(request, status=400, error=t.gettext("That chat is no longer available."))
    return RedirectResponse("/me?notify=1", status_code=303, headers=NO_STORE)


async def qr_image(request: Request) -> Response:
    user = await require_user(request)
    match = _QR_NAME.fullmatch(request.path_params["name"])
    if match is None or user.employee_id is None:
        raise HTTPException(404)
    card_id, generation, ext = int(match[1]), int(match[2]), match[3]
    svc = app_context(request).service
    card = await svc.card(card_id)
    # Someone else's card, an old generation, a revoked or expired card: the same 404, nothing about it revealed.
    if (card is None or card.employee_id != user.employee_id or card.generation != generation
            or not card.is_live(svc.clock())):
        raise HTTPException(404)
    etag = f'"qr-{card_id}-{generation}-{ext}"'
    headers = {"Cache-Control": PRIVATE_IMMUTABLE, "ETag": etag, "Vary": "Cookie"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    current = await svc.current_card(user.employee_id)
    assert current is not None and current.card.id == card_id
    if ext == "svg":
        return Response(qr.svg_bytes(current.url), media_type="image/svg+xml", headers=headers)
    return Response(qr.png_bytes(current.url, box_size=12), media_type="image/png", headers={
        **headers, "Content-Disposition": f'inline; filename="qr-{card_id}-{generation}.png"'})


# --- installable app: manifest, icons, service worker ---------------------------------------------


@functools.cache
def icon_png(size: int) -> bytes:
    """A plain QR-like mark, white on ink, drawn with Pillow (no binary files in the repository)."""
    image = Image.new("RGB", (size, size), THEME)
    draw = ImageDraw.Draw(image)
    unit = size / 12
    white = (255, 255, 255)
    for x, y in ((2, 2), (7, 2), (2, 7)):
        draw.rectangle((x * unit, y * unit, (x + 3) * unit - 1, (y + 3) * unit - 1), outline=white,
                       width=max(2, int(unit * 0.7)))
    draw.rectangle((7.6 * unit, 7.6 * unit, 9.4 * unit, 9.4 * unit), fill=white)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


async def icon(request: Request) -> Response:
    size = request.path_params["size"]
    if size not in ("192", "512"):
        raise HTTPException(404)
    return Response(icon_png(int(size)), media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})


async def manifest(request: Request) -> Response:
    company = await app_context(request).service.company()
    t = app_context(request).renderer.translator(request)
    body = {
        "name": f"{company.name} — {t.gettext('My contact QR')}",
        "short_name": t.gettext("My QR"),
        "lang": t.lang,
        "start_url": "/me",
        "scope": "/me",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": THEME,
        "icons": [
            {"src": "/icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": "/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
        ],
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/manifest+json",
                    headers={"Cache-Control": "no-cache", "Vary": "Accept-Language, Cookie"})


async def service_worker(request: Request) -> Response:
    path = app_context(request).settings.static_dir / "sw.js"
    return Response(path.read_bytes(), media_type="text/javascript", headers={
        "Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})


routes: list[BaseRoute] = [
    Route("/me", me, methods=["GET"]),
    FormRoute("/me/rotate", rotate, guard=require_user),
    FormRoute("/me/notify", notify, guard=require_user),
    Route("/me/qr/{name}", qr_image, methods=["GET"]),
    Route("/manifest.webmanifest", manifest, methods=["GET"]),
    Route("/icons/icon-{size}.png", icon, methods=["GET"]),
    Route("/sw.js", service_worker, methods=["GET"]),
]
