"""An employee's card in the admin console: issue, rotate, revoke, extend; the QR as PNG or SVG; and a
printable business-card sheet (91 x 55 mm, the Japanese standard size).

Rotate and revoke kill the printed cards, so each takes two steps: a GET of the action's URL (the button on the
employee's page) shows what will happen in plain words, and only the POST from that page (``confirm=yes``)
does it; a POST without it answers the same confirmation page and changes nothing (see ``employee_post``)."""

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
from .employees import confirmation_get, employee_post, get_employee

PNG_BOX = 12  # pixels per module: ~600 px for a typical link, crisp on paper at 3 cm


def form_days(form: FormData) -> int | None:
    """The optional ``days`` field: None when empty (the company's default lifetime)."""
    raw_days = field(form, "days")
    days = whole(raw_days) if raw_days.strip() else None
    if raw_days.strip() and (days is None or not 1 <= days <= MAX_CARD_DAYS):
        raise ValidationError("days must be a whole number from 1 to %(most)d", most=MAX_CARD_DAYS)
    return days


async def issue(request: Request, user: User, employee: Employee, form: FormData) -> str:
    await service_of(request).issue_card(employee.id, days=form_days(form), actor=user.email)
    return "issued"


async def extend(request: Request, user: User, employee: Employee, form: FormData) -> str:
    await service_of(request).extend_card(employee.id, days=form_days(form), actor=user.email)
    return "extended"


async def rotate(request: Request, user: User, employee: Employee, form: FormData) -> str:
    await service_of(request).rotate_card(employee.id, days=form_days(form), actor=user.email)
    return "rotated"


async def revoke(request: Request, user: User, employee: Employee, form: FormData) -> str:
    await service_of(request).revoke_card(employee.id, actor=user.email)
    return "revoked"


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
    confirmation_get("/employees/{id}/card/rotate", "rotate", errors="card"),
    confirmation_get("/employees/{id}/card/revoke", "revoke", errors="card"),
    employee_post("/employees/{id}/card/issue", issue, errors="card", keep=("days",)),
    employee_post("/employees/{id}/card/extend", extend, errors="card", keep=("days",)),
    employee_post("/employees/{id}/card/rotate", rotate, errors="card", confirm="rotate"),
    employee_post("/employees/{id}/card/revoke", revoke, errors="card", confirm="revoke"),
]
