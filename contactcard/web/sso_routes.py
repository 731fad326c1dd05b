"""Single sign-on pages: ``/login/oidc`` sends the browser to the company's OpenID provider, and
``/login/oidc/callback`` takes its answer (``sso``), signs in and says clearly why when it does not."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..accounts import SignInRefused
from ..i18n import Translator
from .auth_routes import client_ip, home_for, login_page
from .context import app_context
from .security import NO_STORE
from .session import cookie_name, safe_next, set_session_cookie

FLOW_COOKIE = "cc_oidc"  # ties the provider's answer to the browser that started the sign-in
CALLBACK = "/login/oidc/callback"

# Why a sign-in with the provider did not happen: the status and the page's message (in the visitor's language).
REFUSALS: dict[str, tuple[int, Callable[[Translator], str]]] = {
    "unknown_user": (403, lambda t: t.gettext(
        "No account here matches the one you signed in with. Ask an administrator to add you.")),
    "email_unverified": (403, lambda t: t.gettext(
        "Your identity provider has not verified your email address, so it cannot be matched to an account "
        "here. Ask your IT department.")),
    "state": (400, lambda t: t.gettext("This sign-in has expired or was already used. Start again.")),
    "provider_error": (403, lambda t: t.gettext("The identity provider did not sign you in.")),
    "token": (400, lambda t: t.gettext(
        "The identity provider's answer could not be verified. Start again, or ask an administrator.")),
    "unavailable": (502, lambda t: t.gettext(
        "The identity provider cannot be reached right now. Try again in a few minutes.")),
    "not_configured": (404, lambda t: t.gettext("Single sign-on is not set up.")),
}


def _flow_cookie(request: Request) -> str:
    return cookie_name(request, FLOW_COOKIE)


async def start(request: Request) -> Response:
    sso = app_context(request).sso
    next_url = safe_next(request.query_params.get("next"), "")
    try:
        started = await sso.start(next_url)
    except SignInRefused as exc:
        return await _refused(request, exc)
    response = RedirectResponse(started.url, status_code=303, headers=NO_STORE)
    # SameSite=Lax: the provider's redirect back is a top-level GET, which carries it.
    response.set_cookie(_flow_cookie(request), started.browser_token, max_age=600, path="/", httponly=True,
                        samesite="lax", secure=app_context(request).settings.secure_cookies)
    return response


async def callback(request: Request) -> Response:
    sso = app_context(request).sso
    params = {key: value for key, value in request.query_params.items()}
    try:
        signed_in, next_url = await sso.finish(request.cookies.get(_flow_cookie(request), ""), params,
                                               client_ip(request))
    except SignInRefused as exc:
        response = await _refused(request, exc)
    else:
        response = RedirectResponse(next_url or home_for(signed_in.user), status_code=303, headers=NO_STORE)
        set_session_cookie(request, response, signed_in.session_token)
    response.delete_cookie(_flow_cookie(request), path="/", httponly=True, samesite="lax",
                           secure=app_context(request).settings.secure_cookies)
    return response


async def _refused(request: Request, exc: SignInRefused) -> Response:
    t = app_context(request).renderer.translator(request)
    if exc.retry_after is not None:
        return await login_page(request, next_url="", status=429, headers={"Retry-After": str(exc.retry_after)},
                                error=t.gettext("Too many failed attempts. Wait a little and try again."))
    status, message = REFUSALS.get(exc.reason, REFUSALS["unknown_user"])
    return await login_page(request, next_url="", status=status, error=message(t))


routes: list[BaseRoute] = [
    Route("/login/oidc", start, methods=["GET"]),
    Route(CALLBACK, callback, methods=["GET"]),
]
