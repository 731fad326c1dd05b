"""An employee's card in the admin console: issue, rotate, revoke, extend; the QR as PNG or SVG; and a
printable business-card sheet (91 x 55 mm, the Japanese standard size)."""

from __future__ import annotations

from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ... import qr
from ...models import Employee, IssuedCard, User, ValidationError
from ...service import MAX_CARD_DAYS
from ..security import NO_STORE
from .base import admin_get, field, page, path_id, service_of, whole
from .employees import employee_post, get_employee

PNG_BOX = 12  # pixels per module: ~600 px for a typical link, crisp on paper at 3 cm
DONE = {"issue": "issued", "rotate": "rotated", "revoke": "revoked", "extend": "extended"}


async def card_action(request: Request, user: User, employee: Employee, form: FormData) -> str:
    name = request.path_params["action"]
    if name not in DONE:
        raise HTTPException(404)
    service = service_of(request)
    if name == "revoke":
        await service.revoke_card(employee.id, actor=user.email)
        return DONE[name]
    raw_days = field(form, "days")
    days = whole(raw_days) if raw_days.strip() else None
    if raw_days.strip() and (days is None or not 1 <= days <= MAX_CARD_DAYS):
        raise ValidationError(f"days must be a whole number from 1 to {MAX_CARD_DAYS}")
    if name == "issue":
        await service.issue_card(employee.id, days=days, actor=user.email)
    elif name == "rotate":
        await service.rotate_card(employee.id, days=days, actor=user.email)
    else:
        await service.extend_card(employee.id, days=days, actor=user.email)
    return DONE[name]


async def _current(request: Request) -> tuple[Employee, IssuedCard]:
    service = service_of(request)
    employee = await get_employee(service, path_id(request))
    card = await service.current_card(employee.id)
    if card is None:
        raise HTTPException(404)
    return employee, card


def _download_name(employee: Employee, card: IssuedCard, ext: str) -> str:
    return f"card-{employee.id}-{card.card.generation}.{ext}"


async def qr_png(request: Request, user: User) -> Response:
    employee, card = await _current(request)
    return Response(qr.png_bytes(card.url, box_size=PNG_BOX), media_type="image/png", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="{_download_name(employee, card, "png")}"'})


async def qr_svg(request: Request, user: User) -> Response:
    employee, card = await _current(request)
    return Response(qr.svg_bytes(card.url), media_type="image/svg+xml", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="{_download_name(employee, card, "svg")}"'})


def inline_svg(url: str) -> Markup:
    """The QR as an ``<svg>`` element to put in a page (the XML declaration dropped)."""
    text = qr.svg_bytes(url).decode("utf-8")
    start = text.find("<svg")
    return Markup(text[start:])  # noqa: S704 -- qrcode's own markup; the URL is encoded as modules, not text


async def print_sheet(request: Request, user: User) -> Response:
    employee, card = await _current(request)
    return await page(request, user, "admin/card_print.html", {
        "employee": employee, "card": card, "qr_svg": inline_svg(card.url),
        "short_url": card.url.split("://", 1)[-1],
    })


routes: list[BaseRoute] = [
    admin_get("/employees/{id}/card/qr.png", qr_png),
    admin_get("/employees/{id}/card/qr.svg", qr_svg),
    admin_get("/employees/{id}/card/print", print_sheet),
    employee_post("/employees/{id}/card/{action}", card_action, errors="card", keep=("days",)),
]
