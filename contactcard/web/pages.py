"""Small shared routes: media by content address, the favicon, the link-preview image, health, and the error
pages."""

from __future__ import annotations

import io
import logging
import re

from PIL import Image, ImageDraw
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .. import preview
from ..logs import OncePerInterval
from ..models import Busy
from .api import problems
from .context import app_context
from .routes_info import route_template
from .security import NO_STORE

log = logging.getLogger(__name__)
_busy = OncePerInterval(log)
_SHA = re.compile(r"[0-9a-f]{64}")
IMMUTABLE = "public, max-age=31536000, immutable"


async def media(request: Request) -> Response:
    sha = request.path_params["sha"]
    found = await app_context(request).service.media(sha) if _SHA.fullmatch(sha) else None
    if found is None:
        raise HTTPException(404)
    data, content_type = found
    return Response(data, media_type=content_type, headers={"Cache-Control": IMMUTABLE, "ETag": f'"{sha}"'})


async def preview_image(request: Request) -> Response:
    """The company's link-preview image (``og:image``); only at its current address, which never changes."""
    service = app_context(request).service
    company = await service.company()
    if request.path_params["key"] != preview.image_key(company):
        raise HTTPException(404)
    logo = await service.media(company.logo_sha) if company.logo_sha else None
    png = await run_in_threadpool(preview.card_png, company.name, company.name_en, company.brand_color,
                                  logo[0] if logo else None)  # drawn once (cached), off the event loop
    return Response(png, media_type="image/png", headers={"Cache-Control": IMMUTABLE})


def _favicon_bytes() -> bytes:
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((1, 1, 30, 30), radius=6, fill=(17, 24, 39, 255))
    for x, y in ((6, 6), (18, 6), (6, 18)):
        draw.rectangle((x, y, x + 7, y + 7), outline=(255, 255, 255, 255), width=2)
    draw.rectangle((19, 19, 25, 25), fill=(255, 255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, format="ICO", sizes=[(32, 32)])
    return buf.getvalue()


_FAVICON = _favicon_bytes()


async def favicon(request: Request) -> Response:
    return Response(_FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


async def health(request: Request) -> Response:
    return PlainTextResponse("ok", headers=NO_STORE)


async def http_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientDisconnect):  # the client hung up mid-body: nobody to answer, nothing to log
        return PlainTextResponse("client disconnected", status_code=400)
    if isinstance(exc, Busy):  # another program held the write lock past our patience; nothing was written
        exc = HTTPException(503, headers={"Retry-After": "1"})
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 503:  # busy (here or in the API's problem): expected, and anyone can cause a flood of them
        _busy.warning("busy", "answered 503: the database is locked by another program")
    elif status >= 500:  # the route template, never the path: it may hold a token
        log.exception("error answering %s %s", request.method, route_template(request.scope), exc_info=exc)
    if request.url.path.startswith("/api/"):  # machine clients get RFC 9457 problem details, never a page
        return problems.http_problem(exc)
    ctx = app_context(request)
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    if 300 <= status < 400 and "Location" in headers:  # require_user/require_admin send signed-out visitors here
        return RedirectResponse(headers.pop("Location"), status_code=status,
                                headers={**headers, **NO_STORE})
    return ctx.renderer.page(request, "error.html", {"status": status}, status=status,
                             company=await ctx.service.company(), headers=headers)


routes: list[BaseRoute] = [
    Route("/media/{sha}", media, methods=["GET"]),
    Route("/favicon.ico", favicon, methods=["GET"]),
    Route("/og/{key}.png", preview_image, methods=["GET"]),
    Route("/healthz", health, methods=["GET"]),
]
