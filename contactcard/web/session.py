"""Who is signed in, who may do what, and CSRF: the interface every signed-in page codes against.

    user = await require_admin(request)             # 303 to /login?next=... when signed out, 403 for employees
    FormRoute(path, handler, guard=require_admin)   # a POST: handler(request, user, form) once the token matched
    ctx.renderer.page(request, "admin/x.html", {**template_context(request, user), ...})
    {% include "_csrf.html" %}                      # inside every <form method="post">
    await service.rotate_card(ref, actor=user.email)  # the audit trail's actor is the user's email

Sessions are server-side rows (see ``accounts``); the cookie holds only a random id. Signed-out forms (sign-in,
invitation) use a double-submit token: a random value in an HttpOnly cookie that the form must repeat.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import auth
from ..accounts import Accounts, ActiveSession
from ..models import Role, User
from .context import app_context

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "PreSessionCsrf",
    "User",
    "accounts",
    "clear_session_cookie",
    "cookie_name",
    "csrf_matches",
    "current_user",
    "require_admin",
    "require_user",
    "safe_next",
    "set_session_cookie",
    "template_context",
]

SESSION_COOKIE = "cc_session"
CSRF_COOKIE = "cc_csrf"
SECURE_PREFIX = "__Host-"  # https: kept only if Secure, Path=/ and no Domain, so no subdomain can set it
_STATE_SESSION = "cc_session"
_STATE_PRE = "cc_csrf_pre"
_STATE_PRE_USED = "cc_csrf_pre_used"


def accounts(request: Request) -> Accounts:
    return app_context(request).accounts


def _state(request: Request) -> dict[str, Any]:
    state: dict[str, Any] = request.scope.setdefault("state", {})
    return state


async def _session(request: Request) -> ActiveSession | None:
    state = _state(request)
    if _STATE_SESSION not in state:
        token = request.cookies.get(cookie_name(request, SESSION_COOKIE), "")
        state[_STATE_SESSION] = await accounts(request).session(token) if token else None
    found = state[_STATE_SESSION]
    assert found is None or isinstance(found, ActiveSession)
    return found


async def current_user(request: Request) -> User | None:
    found = await _session(request)
    return None if found is None else found.user


def _login_redirect(request: Request) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(303, headers={"Location": "/login?next=" + quote(target, safe="/")})


async def require_user(request: Request) -> User:
    user = await current_user(request)
    if user is None:
        raise _login_redirect(request)
    return user


async def require_admin(request: Request) -> User:
    user = await require_user(request)
    if user.role != Role.ADMIN:
        raise HTTPException(403)
    return user


def _expected_csrf(request: Request) -> str | None:
    found = _state(request).get(_STATE_SESSION)
    if isinstance(found, ActiveSession):
        return found.csrf_token
    return request.cookies.get(cookie_name(request, CSRF_COOKIE)) or None


async def csrf_matches(request: Request, sent: str) -> bool:
    """Whether a posted ``csrf`` value is this visitor's token, compared in constant time.

    Signed in: the session's token. Signed out: the double-submit cookie's. Only ``forms.FormRoute`` asks.
    """
    await _session(request)
    expected = _expected_csrf(request)
    if not expected:
        return False
    return auth.same(sent, expected)


def template_context(request: Request, user: User | None) -> dict[str, object]:
    """``user`` and ``csrf_token`` for templates (call after ``current_user``/``require_*``)."""
    found = _state(request).get(_STATE_SESSION)
    if isinstance(found, ActiveSession) and user is not None:
        token = found.csrf_token
    else:
        state = _state(request)
        cookie = request.cookies.get(cookie_name(request, CSRF_COOKIE))
        token = cookie or state.get(_STATE_PRE) or ""
        if not cookie:
            if not token:
                token = auth.new_token()
                state[_STATE_PRE] = token
            state[_STATE_PRE_USED] = True
    return {"user": user, "csrf_token": token}


def safe_next(value: str | None, default: str) -> str:
    """A local path to go to after sign-in; anything else (other hosts, //evil, schemes) gives ``default``."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return default
    return value


def _secure(request: Request) -> bool:
    return app_context(request).settings.secure_cookies


def cookie_name(request: Request, name: str) -> str:
    """``name``, with the ``__Host-`` prefix when the base URL is https."""
    return SECURE_PREFIX + name if _secure(request) else name


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    # No max-age: the server-side row decides when the session ends; the cookie lasts the browser session
    # at most 7 days (the longest absolute time-out).
    response.set_cookie(cookie_name(request, SESSION_COOKIE), token, max_age=7 * 86400, path="/", httponly=True,
                        samesite="lax", secure=_secure(request))


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(cookie_name(request, SESSION_COOKIE), path="/", httponly=True, samesite="lax",
                           secure=_secure(request))


class PreSessionCsrf:
    """Pure ASGI middleware: sets the double-submit CSRF cookie on responses whose page used one."""

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and state.get(_STATE_PRE_USED) and state.get(_STATE_PRE):
                cookie = f"{CSRF_COOKIE}={state[_STATE_PRE]}; Path=/; HttpOnly; SameSite=Lax"
                if self.secure:
                    cookie = f"{SECURE_PREFIX}{cookie}; Secure"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
