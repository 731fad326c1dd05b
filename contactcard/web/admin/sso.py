"""The settings page's single sign-on panel: the provider's state and the company's "SSO only" setting."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ...models import User
from ..context import app_context
from . import settings
from .base import admin_post, back, field


async def save(request: Request, user: User, form: FormData) -> Response:
    ctx = app_context(request)
    enabled = field(form, "sso_only") == "on"
    if enabled and not ctx.sso.configured:
        # Employees would have no way in at all.
        return await settings.settings_page(request, user, errors={"sso": "not_configured"}, status=400)
    await ctx.accounts.set_sso_only(enabled, actor=user.email)
    return back("/admin/settings", "saved")


routes: list[BaseRoute] = [
    admin_post("/settings/sso", save),
]
