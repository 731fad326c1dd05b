"""Sign-in, sign-out, and the one-time links (invitation and password reset) that set a password."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .. import auth
from ..accounts import LinkInvalid, SignInRefused
from ..models import Role, User, ValidationError
from .context import app_context
from .forms import FormRoute, anyone
from .security import NO_STORE
from .session import (
    SESSION_COOKIE,
    accounts,
    clear_session_cookie,
    cookie_name,
    current_user,
    safe_next,
    set_session_cookie,
    template_context,
)

SIGNED_OUT = {"Clear-Site-Data": '"cache", "storage"'}
SIGNED_OUT_PAGE = "/login"  # where signing out lands, here or back from the identity provider's sign-out


def home_for(user: User) -> str:
    return "/admin" if user.role == Role.ADMIN else "/me"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def login_page(request: Request, *, next_url: str, email: str = "", error: str = "",
                      status: int = 200, headers: dict[str, str] | None = None) -> Response:
    ctx = app_context(request)
    return ctx.renderer.page(
        request, "auth/login.html",
        {**template_context(request, await current_user(request)), "next": next_url, "email": email, "error": error,
         "sso": ctx.sso.name if ctx.sso.configured else "", "sso_only": await ctx.accounts.sso_only()},
        status=status, company=await ctx.service.company(), headers={**NO_STORE, **(headers or {})},
    )


async def login_form(request: Request) -> Response:
    user = await current_user(request)
    next_url = safe_next(request.query_params.get("next"), "")
    if user is not None:
        return RedirectResponse(next_url or home_for(user), status_code=303, headers=NO_STORE)
    return await login_page(request, next_url=next_url)


async def login(request: Request, _: None, form: FormData) -> Response:
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    next_url = safe_next(str(form.get("next", "")), "")
    t = app_context(request).renderer.translator(request)
    try:
        signed_in = await accounts(request).sign_in(email, password, client_ip(request))
    except SignInRefused as exc:
        if exc.retry_after is not None:
            return await login_page(
                request, next_url=next_url, email=email[:254], status=429,
                headers={"Retry-After": str(exc.retry_after)},
                error=t.gettext("Too many failed attempts. Wait a little and try again."),
            )
        if exc.reason == "sso_only":
            return await login_page(request, next_url=next_url, email=email[:254], status=403, error=t.gettext(
                "Employees sign in with %(provider)s: use the button below.",
                provider=app_context(request).sso.name or t.gettext("the company's identity provider")))
        return await login_page(request, next_url=next_url, email=email[:254], status=400,
                                error=t.gettext("The email or password is not right."))
    response = RedirectResponse(next_url or home_for(signed_in.user), status_code=303, headers=NO_STORE)
    set_session_cookie(request, response, signed_in.session_token)
    return response


async def logout(request: Request, _: None, form: FormData) -> Response:
    token = request.cookies.get(cookie_name(request, SESSION_COOKIE), "")
    ended = await accounts(request).sign_out(token) if token else None
    # A session opened through single sign-on goes on to sign out at the provider too, which then sends the
    # browser back to the sign-in page: on a shared device the next person must not be signed straight back in.
    ctx = app_context(request)
    provider_sign_out = None if ended is None else await ctx.sso.end_session_form(ended)
    # Nothing of the account stays on this device: the /me service worker's offline copy (page and QR) and
    # any other storage go, even if me.js did not run. Cookies are left alone (the session cookie is cleared
    # just below, and the signed-out form's CSRF cookie must survive).
    headers = {**NO_STORE, **SIGNED_OUT}
    response: Response
    if provider_sign_out is None:
        response = RedirectResponse(SIGNED_OUT_PAGE, status_code=303, headers=headers)
    elif provider_sign_out.method == "get":  # the operator's choice for a provider that refuses the POST
        response = RedirectResponse(provider_sign_out.url, status_code=303, headers=headers)
    else:
        # A page whose form posts the ID token to the provider (static/sign_out.js submits it at once; without
        # script, its button does): a redirect would put the token, and the person's claims in it, in a URL,
        # which the browser's history and the provider's logs keep.
        response = ctx.renderer.page(
            request, "auth/sign_out.html", {"user": None, "provider": ctx.sso.name, "form": provider_sign_out},
            company=await ctx.service.company(), headers=headers)
    clear_session_cookie(request, response)
    return response


async def _invite_page(request: Request, token: str, *, error: str = "", status: int = 200) -> Response:
    ctx = app_context(request)
    try:
        invitee, _purpose = await accounts(request).link_user(token)
        context: dict[str, object] = {"invalid": False, "invitee": invitee}
    except LinkInvalid:
        context, status = {"invalid": True}, 410
    return ctx.renderer.page(
        request, "auth/invite.html",
        {**template_context(request, None), **context, "token": token, "error": error,
         "min_length": auth.MIN_PASSWORD},
        status=status, company=await ctx.service.company(), headers=NO_STORE,
    )


async def invite_form(request: Request) -> Response:
    return await _invite_page(request, request.path_params["token"])


async def invite_accept(request: Request, _: None, form: FormData) -> Response:
    token = request.path_params["token"]
    password, again = str(form.get("password", "")), str(form.get("password2", ""))
    t = app_context(request).renderer.translator(request)
    if password != again:
        return await _invite_page(request, token, status=400, error=t.gettext("The two passwords do not match."))
    try:
        auth.check_password(password)
    except ValidationError:
        return await _invite_page(request, token, status=400, error=t.gettext(
            "The password must be %(min)s to %(max)s characters long.", min=auth.MIN_PASSWORD, max=auth.MAX_PASSWORD))
    try:
        signed_in = await accounts(request).sign_in_with_link(token, password, client_ip(request))
    except LinkInvalid:
        return await _invite_page(request, token)
    response = RedirectResponse(home_for(signed_in.user), status_code=303, headers=NO_STORE)
    set_session_cookie(request, response, signed_in.session_token)
    return response


routes: list[BaseRoute] = [
    Route("/login", login_form, methods=["GET"]),
    FormRoute("/login", login, guard=anyone),
    FormRoute("/logout", logout, guard=anyone),
    Route("/invite/{token}", invite_form, methods=["GET"]),
    FormRoute("/invite/{token}", invite_accept, guard=anyone),
]
