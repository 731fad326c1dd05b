"""Company settings: names, logo, brand colour, business hours, time zone, link lifetime, scan retention,
the contact form on card pages, the channel policy lists, and the company's general channels."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ... import images, policy
from ...models import ContactcardError, Message, User, ValidationError
from ...service import MAX_TEXT
from ..context import app_context
from . import channels
from .base import (
    admin_get,
    admin_post,
    admin_upload,
    back,
    converted,
    field,
    page,
    path_id,
    refusal_status,
    said,
    service_of,
    whole,
)

TEXT_FIELDS = ("name", "name_en", "brand_color", "business_hours", "business_hours_en", "timezone")
NUMBER_FIELDS = ("default_card_days", "retention_days")
SWITCHES = ("leads_enabled", "preview_photo")  # checkboxes: "on" when ticked, absent when not
MAX_HOURS = 500
MAX_LIST = 50
POLICY_LISTS = policy.ALLOW_LISTS
# How the form names each field (its label), for the messages about it.
LABELS = {
    "name": Message("Company name (Japanese)"),
    "name_en": Message("Company name in Latin letters (for readers abroad)"),
    "brand_color": Message("Brand colour"), "business_hours": Message("Business hours (Japanese)"),
    "business_hours_en": Message("Business hours in English (for readers abroad)"), "timezone": Message("Time zone"),
    "default_card_days": Message("Default link lifetime (days)"),
    "retention_days": Message("Keep scan events for (days)"), "allow_email_domains": Message("Email domains"),
    "allow_phone_prefixes": Message("Phone number prefixes"), "allow_line_ids": Message("LINE Official Account ids"),
    "allow_line_works_domains": Message("LINE WORKS domains"),
    "allow_web_hosts": Message("Web hosts for website, booking and custom links"),
}


async def settings_page(request: Request, user: User, *, errors: Mapping[str, str] | None = None,
                        values: Mapping[str, str] | None = None, status: int = 200) -> Response:
    service = service_of(request)
    company = await service.company()
    current: dict[str, Any] = {name: getattr(company, name) for name in (*TEXT_FIELDS, *NUMBER_FIELDS)}
    current.update({name: "\n".join(getattr(company, name)) for name in POLICY_LISTS})
    current.update({name: "on" if getattr(company, name) else "" for name in SWITCHES})
    return await page(request, user, "admin/settings.html", {
        "values": {**current, **(values or {})}, "errors": dict(errors or {}),
        "channels": await service.channels(None), "kinds": channels.KINDS,
        "configured": await service.is_configured(),
        "sso": await app_context(request).sso.status(),
        "scim": await service.scim_state(), "scim_url": f"{service.base_url}/scim/v2",
    }, status=status)


async def show(request: Request, user: User) -> Response:
    return await settings_page(request, user)


def _changes(form: Mapping[str, str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = form[name].strip()
        limit = MAX_HOURS if name.startswith("business_hours") else MAX_TEXT
        if len(value) > limit:
            raise ValidationError("%(what)s is longer than %(limit)d characters", what=LABELS[name], limit=limit)
        changes[name] = value
    for name in NUMBER_FIELDS:
        number = whole(form[name])
        if number is None:
            raise ValidationError("%(what)s must be a whole number of days", what=LABELS[name])
        changes[name] = number
    for name, normalise in POLICY_LISTS.items():
        items = [line.strip() for line in form[name].splitlines() if line.strip()]
        if len(items) > MAX_LIST:
            raise ValidationError("%(what)s: at most %(most)d entries", what=LABELS[name], most=MAX_LIST)
        changes[name] = tuple(dict.fromkeys(normalise(item) for item in items))
    for name in SWITCHES:
        changes[name] = form[name] == "on"
    return changes


async def save(request: Request, user: User, form: FormData) -> Response:
    service = service_of(request)
    values = {name: field(form, name) for name in (*TEXT_FIELDS, *NUMBER_FIELDS, *POLICY_LISTS, *SWITCHES)}
    try:
        company = dataclasses.replace(await service.company(), **_changes(values))
        await service.save_company(company, actor=user.email)
    except ContactcardError as err:
        return await settings_page(request, user, errors={"company": said(request, err)}, values=values, status=400)
    return back("/admin/settings", "saved")


async def logo(request: Request, user: User, form: FormData) -> Response:
    try:
        png = await converted(form, images.logo_png)
    except images.ImageRejected as err:
        return await logo_refused(request, user, err.code)
    await service_of(request).set_logo(png, actor=user.email)
    return back("/admin/settings", "logo")


async def logo_refused(request: Request, user: User, code: str) -> Response:
    return await settings_page(request, user, errors={"logo": code}, status=refusal_status(code))


async def logo_remove(request: Request, user: User, form: FormData) -> Response:
    await service_of(request).set_logo(None, actor=user.email)
    return back("/admin/settings", "logo")


async def channel_add(request: Request, user: User, form: FormData) -> Response:
    try:
        await channels.add(service_of(request), None, form, user)
    except ContactcardError as err:
        values = {"kind": field(form, "kind"), "target": field(form, "target"), "label": field(form, "label")}
        return await settings_page(request, user, errors={"channel": said(request, err)}, values=values, status=400)
    return back("/admin/settings", "channel_added")


async def channel_remove(request: Request, user: User, form: FormData) -> Response:
    await channels.remove(service_of(request), None, path_id(request, "channel"), user)
    return back("/admin/settings", "channel_removed")


async def channel_move(request: Request, user: User, form: FormData) -> Response:
    try:
        await channels.move(service_of(request), None, path_id(request, "channel"), form, user)
    except ValidationError as err:
        return await settings_page(request, user, errors={"channel": said(request, err)}, status=400)
    return back("/admin/settings", "channel_moved")


routes: list[BaseRoute] = [
    admin_get("/settings", show),
    admin_post("/settings", save),
    admin_upload("/settings/logo", logo, refused=logo_refused),
    admin_post("/settings/logo/remove", logo_remove),
    admin_post("/settings/channels", channel_add),
    admin_post("/settings/channels/{channel}/remove", channel_remove),
    admin_post("/settings/channels/{channel}/move", channel_move),
]
