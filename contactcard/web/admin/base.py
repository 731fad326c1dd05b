"""What every admin console area shares: the route helpers, id and form parsing, the redirect after a POST,
page rendering.

Routes are declared with ``admin_get`` (the handler gets ``(request, user)``, only for an admin: 303 to
sign-in, 403 for employees) and ``admin_post`` (``(request, user, form)``, only once the form's CSRF token
matched: 403 before anything is done; see ``forms``). Ids in URLs are checked here
(digits, a sane length) and an unknown one is a 404. Bad input re-renders the form with a message and
writes nothing; a good POST redirects (303) back with ``?done=...`` for the confirmation line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ... import images
from ...models import ContactcardError, User
from ...service import Service, local_time
from ..context import app_context
from ..forms import FormRoute
from ..security import NO_STORE
from ..session import require_admin, template_context

MAX_ID_DIGITS = 12
PAGE_SIZE = 50
UPLOAD_FORM_BYTES = images.MAX_UPLOAD_BYTES + 64 * 1024  # the file plus the multipart envelope and the token
MAX_UPLOAD_BODY = 64 * 1024 * 1024  # above this the app answers 413 itself; below, the form says why
# Confirmation lines a redirect may ask for (anything else in ?done= is ignored).
DONE = ("saved", "created", "channel_added", "channel_removed", "channel_moved", "photo", "departed", "issued",
        "rotated", "revoked", "extended", "invited", "logo", "webhook_test", "webhook_enable", "webhook_redeliver",
        "webhook_removed", "lead_deleted", "erased", "token_revoked", "extended_all", "extended_none")


def path_id(request: Request, name: str = "id") -> int:
    """A positive id from the path; anything else (letters, signs, 20 digits) is a 404, never a 500."""
    raw = str(request.path_params.get(name, ""))
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_ID_DIGITS or int(raw) < 1:
        raise HTTPException(404)
    return int(raw)


def field(form: FormData, name: str) -> str:
    """A text field; a missing field or an upload where text belongs reads as empty."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def whole(text: str) -> int | None:
    """A whole number typed into a form, or None."""
    text = text.strip()
    if not text or len(text) > 9 or not text.lstrip("-").isdigit() or not text.isascii():
        return None
    return int(text)


def parse_day(text: str) -> date | None:
    """A ``YYYY-MM-DD`` day, or None (empty or not a usable day).

    The calendar's first and last days are not usable: a local day there has no UTC bounds (the day after
    9999-12-31 does not exist; 0001-01-01 00:00 in Tokyo is still year 0 in UTC), so they count as invalid.
    """
    try:
        day = date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None
    return day if day is None or date.min < day < date.max else None


def page_number(request: Request, pages_for: int) -> int:
    """The ``page`` query parameter, clamped to 1..pages_for; junk reads as 1."""
    raw = request.query_params.get("page", "1")
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else 1
    return min(max(number, 1), pages_for)


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def csv_download(body: AsyncIterator[str], filename: str) -> Response:
    return StreamingResponse(body, media_type="text/csv; charset=utf-8", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'})


def back(url: str, done: str) -> Response:
    return RedirectResponse(f"{url}?{urlencode({'done': done})}", status_code=303)


async def page(request: Request, user: User, name: str, context: Mapping[str, Any], *,
               status: int = 200, pins: tuple[object, ...] | None = None) -> Response:
    """A console page; with ``pins`` (every object ``context`` shows), the page rendered from the same ones, for
    the same admin, CSRF token and notice, is reused (see ``Renderer.html``)."""
    ctx = app_context(request)
    company = await ctx.service.company()
    done = request.query_params.get("done")
    shared = {**template_context(request, user), "done": done if done in DONE else None}
    return ctx.renderer.page(
        request, name,
        {**shared, "local": lambda when: local_time(company, when), **context},
        status=status, company=company, headers=NO_STORE,
        pins=None if pins is None else (*pins, company, *shared.values()),
    )


def said(request: Request, err: ContactcardError) -> str:
    """What an error says, in the page's language (the CLI shows ``str(err)``, in English)."""
    return app_context(request).renderer.translator(request).message(err)


def service_of(request: Request) -> Service:
    return app_context(request).service


CONSOLE_PATIENCE = 0.05  # seconds a console page waits at most for the scans in flight to be committed


def admin_get(path: str, handler: Callable[[Request, User], Awaitable[Response]]) -> Route:
    """A console page: ``handler(request, user)`` for an admin; 303 to sign-in or 403 for anyone else."""
    async def endpoint(request: Request) -> Response:
        await app_context(request).writer.quiet(CONSOLE_PATIENCE)  # customers' scans first
        return await handler(request, await require_admin(request))

    return Route(path, endpoint, methods=["GET"], name=handler.__name__)


def admin_post(path: str, handler: Callable[[Request, User, FormData], Awaitable[Response]]) -> FormRoute[User]:
    """A console form: ``handler(request, user, form)`` for an admin, once the form's CSRF token matched."""
    return FormRoute(path, handler, guard=require_admin)


def admin_upload(path: str, handler: Callable[[Request, User, FormData], Awaitable[Response]], *,
                 refused: Callable[[Request, User, str], Awaitable[Response]]) -> FormRoute[User]:
    """A console form with one image file (read it with ``converted``); ``refused(request, user, code)``
    answers an upload too large to read ("too_large") or not a form ("malformed") with the form's page."""
    return FormRoute(path, handler, guard=require_admin, upload=UPLOAD_FORM_BYTES, refused=refused,
                     max_body_size=MAX_UPLOAD_BODY)


async def converted(form: FormData, convert: Callable[[bytes], bytes]) -> bytes:
    """The form's uploaded ``file`` run through ``convert``; images.ImageRejected (with a code) if refused.

    Answer a refusal with ``refusal_status(code)``.
    """
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise images.ImageRejected("empty", "no file was uploaded")
    data = await file.read(images.MAX_UPLOAD_BYTES + 1)
    # Pillow decodes and re-encodes for up to a second or more on a 40 MP image: in a worker thread, so the
    # event loop keeps answering scans meanwhile.
    return await asyncio.to_thread(convert, data)


def refusal_status(problem: str) -> int:
    return 413 if problem == "too_large" else 400
