"""Webhooks in the console: endpoints (add, remove, enable again), the alert for one disabled after sustained
failure, each endpoint's delivery log with "redeliver", and "send test event". The use cases are
``webhook_admin.WebhookAdmin``; the worker that sends is woken after each action.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ... import webhooks as hooks
from ...models import Conflict, ContactcardError, NotFound, User
from ..context import app_context
from .base import admin_get, admin_post, back, field, page, path_id, said

LOG_SIZE = 100


async def _endpoints_page(request: Request, user: User, *, error: str = "", form: Mapping[str, object] | None = None,
                          added: object = None, status: int = 200) -> Response:
    endpoints = await app_context(request).webhooks.endpoints()
    return await page(request, user, "admin/webhooks.html", {
        "endpoints": endpoints, "alerts": [e for e in endpoints if not e.enabled], "event_types": hooks.EVENT_TYPES,
        "error": error, "added": added,
        "form": form or {"url": "", "name": "", "kind": hooks.STANDARD, "events": hooks.EVENT_TYPES},
    }, status=status)


async def endpoints(request: Request, user: User) -> Response:
    return await _endpoints_page(request, user)


async def add(request: Request, user: User, form: FormData) -> Response:
    kind = hooks.CHAT if field(form, "kind") == hooks.CHAT else hooks.STANDARD
    chosen = [e for e in form.getlist("events") if isinstance(e, str)]
    values: dict[str, object] = {"url": field(form, "url"), "name": field(form, "name"), "kind": kind, "events": chosen}
    try:
        added = await app_context(request).webhooks.add_endpoint(
            field(form, "url"), chosen if kind == hooks.STANDARD else [], kind=kind, name=field(form, "name"),
            actor=user.email)
    except ContactcardError as exc:
        return await _endpoints_page(request, user, error=said(request, exc), form=values, status=400)
    # The secret is shown on this answer only (never in a URL, never again).
    return await _endpoints_page(request, user, added=added)


async def endpoint_log(request: Request, user: User) -> Response:
    webhooks = app_context(request).webhooks
    endpoint_id = path_id(request)
    try:
        endpoint = await webhooks.endpoint(endpoint_id)
    except NotFound:
        raise HTTPException(404) from None
    return await page(request, user, "admin/webhook.html", {
        "endpoint": endpoint, "log": await webhooks.log(endpoint_id, limit=LOG_SIZE)})


async def _act(request: Request, user: User, action: str) -> Response:
    ctx = app_context(request)
    endpoint_id = path_id(request)
    try:
        if action == "test":
            await ctx.webhooks.send_test(endpoint_id, actor=user.email)
        elif action == "enable":
            await ctx.webhooks.enable_endpoint(endpoint_id, actor=user.email)
        elif action == "redeliver":
            await ctx.webhooks.redeliver(endpoint_id, path_id(request, "delivery"), actor=user.email)
        else:
            await ctx.webhooks.remove_endpoint(endpoint_id, actor=user.email)
            return back("/admin/webhooks", "webhook_removed")
    except NotFound:
        raise HTTPException(404) from None
    except Conflict:
        pass  # enabling an endpoint that is enabled already: nothing to do, the page shows its state
    ctx.deliverer.wake()
    return back(f"/admin/webhooks/{endpoint_id}", f"webhook_{action}")


async def send_test(request: Request, user: User, form: FormData) -> Response:
    return await _act(request, user, "test")


async def enable(request: Request, user: User, form: FormData) -> Response:
    return await _act(request, user, "enable")


async def redeliver(request: Request, user: User, form: FormData) -> Response:
    return await _act(request, user, "redeliver")


async def remove(request: Request, user: User, form: FormData) -> Response:
    return await _act(request, user, "remove")


routes: list[BaseRoute] = [
    admin_get("/webhooks", endpoints),
    admin_post("/webhooks", add),
    admin_get("/webhooks/{id}", endpoint_log),
    admin_post("/webhooks/{id}/test", send_test),
    admin_post("/webhooks/{id}/enable", enable),
    admin_post("/webhooks/{id}/remove", remove),
    admin_post("/webhooks/{id}/deliveries/{delivery}/redeliver", redeliver),
]
