"""The company's lead inbox: contacts customers left on card pages (list, one entry, delete, CSV), and the
data-subject request: find everything that holds an email address and delete it.

Entries come to the company only; the employee whose card the customer used sees none of this.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ... import csvexport, policy
from ...models import Lead, NotFound, User
from ...service import local_time
from .base import (
    PAGE_SIZE,
    admin_get,
    admin_post,
    back,
    csv_download,
    field,
    page,
    page_count,
    page_number,
    path_id,
    service_of,
)

LEAD_HEADER = ("id", "time", "local_time", "name", "organisation", "email", "phone", "message", "language",
               "card_id", "employee_email", "consent_version", "consent_text")
MAX_EMAIL = 254


async def _people(request: Request) -> dict[int, str]:
    """Employee names by id: whose card an entry came through."""
    return {e.id: e.display_name for e in await service_of(request).employees()}


async def inbox(request: Request, user: User) -> Response:
    leads = service_of(request).leads
    total = await leads.count()
    pages = page_count(total)
    number = page_number(request, pages)
    rows = await leads.inbox(limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    return await page(request, user, "admin/leads.html", {
        "rows": rows, "total": total, "page_no": number, "pages": pages, "people": await _people(request),
        "prev_q": urlencode({"page": number - 1}), "next_q": urlencode({"page": number + 1}),
    })


async def _lead(request: Request) -> Lead:
    try:
        return await service_of(request).leads.get(path_id(request))
    except NotFound:
        raise HTTPException(404) from None


async def one(request: Request, user: User) -> Response:
    return await page(request, user, "admin/lead.html", {"lead": await _lead(request),
                                                         "people": await _people(request)})


async def delete(request: Request, user: User, form: FormData) -> Response:
    lead = await _lead(request)
    await service_of(request).leads.delete(lead.id, actor=user.email)
    return back("/admin/leads", "lead_deleted")


async def leads_csv(request: Request, user: User) -> Response:
    service = service_of(request)
    company = await service.company()
    emails = {e.id: e.email for e in await service.employees()}

    async def body() -> AsyncIterator[str]:
        yield csvexport.BOM + csvexport.lines([LEAD_HEADER])
        for rows in await service.leads.every_page():
            yield csvexport.lines(
                [r.id, r.time.strftime("%Y-%m-%dT%H:%M:%SZ"), local_time(company, r.time).strftime("%Y-%m-%d %H:%M"),
                 r.name, r.organisation, r.email, r.phone, r.message, r.language, r.card_id or "",
                 emails.get(r.employee_id or 0, ""), r.consent_version, r.consent_text] for r in rows)

    stamp = local_time(company, service.clock()).strftime("%Y%m%d")
    return csv_download(body(), f"leads-{stamp}.csv")


def _email(raw: str) -> str | None:
    email = raw.strip()
    return email if email and len(email) <= MAX_EMAIL and policy.is_email(email) else None


async def privacy(request: Request, user: User) -> Response:
    """Everything that holds an email address (a data-subject request)."""
    raw = request.query_params.get("email", "")[:MAX_EMAIL + 1]
    email = _email(raw)
    found = await service_of(request).leads.find(email) if email else None
    return await page(request, user, "admin/privacy.html", {
        "email": raw.strip(), "invalid": bool(raw.strip()) and email is None, "found": found,
        "people": await _people(request)}, status=400 if raw.strip() and email is None else 200)


async def erase(request: Request, user: User, form: FormData) -> Response:
    email = _email(field(form, "email"))
    if email is None:
        raise HTTPException(400)
    await service_of(request).leads.erase(email, actor=user.email)  # audited with the count, not the address
    return back("/admin/privacy", "erased")


routes: list[BaseRoute] = [
    admin_get("/leads", inbox),
    admin_get("/leads.csv", leads_csv),
    admin_get("/leads/{id}", one),
    admin_post("/leads/{id}/delete", delete),
    admin_get("/privacy", privacy),
    admin_post("/privacy/erase", erase),
]
