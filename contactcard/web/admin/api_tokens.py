"""API tokens in the console: the list (never the tokens themselves), create one (shown once, on the answer to
the form, never in a URL), revoke one. Every change is a CSRF-checked form and audited with the admin's email."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ...apitokens import DEFAULT_DAYS, MAX_DAYS
from ...models import ApiScope, ContactcardError, NotFound, User, ValidationError
from ..context import app_context
from .base import admin_get, admin_post, back, field, page, path_id, said, whole


async def _page(request: Request, user: User, *, created: str | None = None, error: str | None = None,
                values: Mapping[str, str] | None = None, status: int = 200) -> Response:
    tokens = app_context(request).api_tokens
    return await page(request, user, "admin/api_tokens.html", {
        "tokens": list(reversed(await tokens.tokens())), "now": app_context(request).service.clock(),
        "scopes": [s.value for s in ApiScope], "created": created, "error": error,
        "values": {"days": str(DEFAULT_DAYS), **(values or {})}, "max_days": MAX_DAYS,
    }, status=status)


async def token_list(request: Request, user: User) -> Response:
    return await _page(request, user)


async def create(request: Request, user: User, form: FormData) -> Response:
    values = {name: field(form, name) for name in ("name", "scope", "days")}
    try:
        days = whole(values["days"])
        if days is None:
            raise ValidationError("days must be a whole number from 1 to %(most)d", most=MAX_DAYS)
        _, secret = await app_context(request).api_tokens.create(values["name"].strip(), values["scope"], days=days,
                                                                 actor=user.email)
    except ContactcardError as err:
        return await _page(request, user, error=said(request, err), values=values, status=400)
    return await _page(request, user, created=secret)


async def revoke(request: Request, user: User, form: FormData) -> Response:
    try:
        await app_context(request).api_tokens.revoke(path_id(request), actor=user.email)
    except NotFound:
        raise HTTPException(404) from None
    return back("/admin/api-tokens", "token_revoked")


routes: list[BaseRoute] = [
    admin_get("/api-tokens", token_list),
    admin_post("/api-tokens", create),
    admin_post("/api-tokens/{id}/revoke", revoke),
]
