"""Every request that may change something is a form post with a CSRF token, declared one way: ``FormRoute``.

    FormRoute("/login", login, guard=anyone)                  # login(request, None, form)
    FormRoute("/me/rotate", rotate, guard=require_user)       # rotate(request, user, form)
    admin.base.admin_post(...), admin.employees.employee_post(...) build on it for the console

A form route runs its ``guard`` first (a signed-out visitor is sent to sign in, an employee gets 403, an
unknown id is a 404, before a byte of the body is read), then reads the form and checks its ``csrf`` field
(``session.csrf_matches``: the session's token when signed in, else the double-submit cookie's). Only a
match reaches the handler; a mismatch is a 403 with nothing done. A body that cannot be read as a form is a
400 or 413 (or, with ``refused``, the form's own page saying why), and a client that hangs up mid-body ends
the request before the handler: nothing done, and no traceback (``pages.http_error``; the access log says 499).

Fail closed: ``check_routes`` refuses (at ``create_app``) a route table in which any route takes a method
other than GET/HEAD/OPTIONS without being a ``FormRoute``, so a plain ``Route(..., methods=["POST"])`` cannot
reach a test, let alone production. Three declared exceptions: ``SessionlessRoute``, for routes that act for
no one (no session or cookie is read), where a forged request can do nothing a direct one could not;
``SignedFormRoute``, a form posted without a session (the card's contact form), cookies removed, whose signed
token (bound to the card and the time it was served) is verified before the handler instead; and
``bearer.BearerRoute``, for machine clients (API, SCIM) that authenticate each request with an ``Authorization``
header a browser never adds by itself, with the request's cookies removed (see ``bearer``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .bearer import BearerRoute
from .session import csrf_matches

U = TypeVar("U")
V = TypeVar("V")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_FIELDS = 200
MAX_FORM_PART = 64 * 1024


class UnsafeRoute(AssertionError):
    """A route takes an unsafe method without the CSRF check: the app refuses to be built."""


class _Unreadable(Exception):
    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.code = code  # "too_large" or "malformed"
        self.status = status  # the plain answer when the route has no ``refused`` page


async def anyone(request: Request) -> None:
    """The guard of the signed-out forms (sign-in, invitation, sign-out): nobody is turned away before the
    token check."""


class FormRoute(Route, Generic[U]):
    """A POST route whose ``handler(request, guarded, form)`` runs only once the form's CSRF token matched.

    ``guard(request)`` runs before the body is read and hands its result (usually the user) to the handler.
    ``upload`` (bytes) allows one file part of that size and refuses a larger Content-Length before reading;
    ``refused(request, guarded, code)`` answers a body that could not be read ("too_large", "malformed")
    with the form's own page instead of the plain error page.
    """

    def __init__(self, path: str, handler: Callable[[Request, U, FormData], Awaitable[Response]], *,
                 guard: Callable[[Request], Awaitable[U]], upload: int | None = None,
                 refused: Callable[[Request, U, str], Awaitable[Response]] | None = None,
                 max_body_size: int | None = None, name: str | None = None) -> None:
        async def endpoint(request: Request) -> Response:
            guarded = await guard(request)
            try:
                form = await _checked_form(request, upload)
            except _Unreadable as err:
                if refused is None:
                    raise HTTPException(err.status) from None
                return await refused(request, guarded, err.code)
            try:
                return await handler(request, guarded, form)
            finally:
                await form.close()  # an upload's parts sit in temp files until closed

        super().__init__(path, endpoint, methods=["POST"], name=name or handler.__name__,
                         max_body_size=max_body_size)
        self.takes_upload = upload is not None


class SessionlessRoute(Route):
    """A route that may take unsafe methods without a token because it acts for no one: it reads no session
    or cookie, so a request forged from another site can do nothing a direct request could not."""


class SignedFormRoute(Route, Generic[V]):
    """A form posted without a session: the card's contact form, which customers fill in (see ``leads``).

    The request's cookies are removed before anything runs, so no session or double-submit cookie can be
    ridden; in their place the form carries a signed token the page was served with. ``verify(request, form)``
    checks it (and whatever else the form's token binds, here the card and the time) and its verdict is handed
    to ``handler(request, form, verdict)``: the handler never sees a form without its verdict, and acts on the
    form only when the verdict says so. A body that cannot be read as a form reaches them as an empty form,
    so the hit is still handled (recorded), and refused by the verdict.
    """

    def __init__(self, path: str, handler: Callable[[Request, FormData, V], Awaitable[Response]], *,
                 verify: Callable[[Request, FormData], Awaitable[V]], name: str | None = None) -> None:
        async def endpoint(request: Request) -> Response:
            request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"cookie"]
            request = Request(request.scope, request.receive)
            try:
                form = await _read_form(request, None)
            except _Unreadable:
                form = FormData()
            try:
                return await handler(request, form, await verify(request, form))
            finally:
                await form.close()

        super().__init__(path, endpoint, methods=["POST"], name=name or handler.__name__)


async def _checked_form(request: Request, upload: int | None) -> FormData:
    """The posted form once its ``csrf`` field matches; HTTPException(403) otherwise (the form is closed)."""
    form = await _read_form(request, upload)
    sent = form.get("csrf")
    if not isinstance(sent, str) or not await csrf_matches(request, sent):
        await form.close()
        raise HTTPException(403)
    return form


async def _read_form(request: Request, upload: int | None) -> FormData:
    """The posted form, bounded; _Unreadable for a body too large or not a form."""
    if upload is not None:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > upload:
            raise _Unreadable("too_large", 413)  # refused before reading a byte of it
    try:
        form = await request.form(max_files=0 if upload is None else 1, max_fields=MAX_FORM_FIELDS,
                                  max_part_size=MAX_FORM_PART if upload is None else upload)
    except HTTPException as exc:
        await request.close()  # the parts spooled before the error, if any
        if exc.status_code not in (400, 413):
            raise
        too_large = exc.status_code == 413 or "exceeded" in str(exc.detail)  # a part past its size limit
        raise _Unreadable("too_large" if too_large else "malformed", exc.status_code) from None
    except ClientDisconnect:  # the handler never runs; the app answers it quietly (pages.http_error, 499 logged)
        await request.close()
        raise
    return form


def check_routes(routes: Iterable[BaseRoute], prefix: str = "") -> None:
    """Raise ``UnsafeRoute`` unless every route that takes an unsafe method is a FormRoute (or a
    SessionlessRoute, SignedFormRoute or BearerRoute); mounts are walked, and only static files may be mounted
    as an opaque app."""
    for route in routes:
        if isinstance(route, FormRoute | SessionlessRoute | SignedFormRoute | BearerRoute):
            continue
        if isinstance(route, Route):
            if route.methods is None or route.methods - SAFE_METHODS:
                raise UnsafeRoute(f"{prefix}{route.path} takes {sorted(route.methods or ['any method'])} "
                                  "without the CSRF check: declare it with FormRoute")
        elif isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            continue  # answers GET and HEAD only
        elif isinstance(route, Mount) and route.routes:
            check_routes(route.routes, prefix + route.path)
        else:
            raise UnsafeRoute(f"{prefix}{getattr(route, 'path', route)!r} cannot be checked for the CSRF rule")
