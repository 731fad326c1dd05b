"""The audit log: every sign-in and change, newest first, paginated, filterable by actor, and CSV export.

Read-only: the table is append-only (the schema's triggers refuse UPDATE and DELETE) and no route here writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ... import csvexport
from ...audit import MAX_ACTOR
from ...models import User
from ...service import local_time
from .base import PAGE_SIZE, admin_get, csv_download, page, page_count, page_number, service_of

AUDIT_HEADER = ("id", "time", "local_time", "actor", "action", "target", "before", "after")


def _actor(request: Request) -> str | None:
    raw = request.query_params.get("actor", "").strip()
    return raw[:MAX_ACTOR] or None


async def audit_log(request: Request, user: User) -> Response:
    service = service_of(request)
    actor = _actor(request)
    total = await service.count_audit_log(actor=actor)
    pages = page_count(total)
    number = page_number(request, pages)
    rows = await service.audit_log(actor=actor, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)

    def q(**extra: object) -> str:
        return urlencode({k: v for k, v in {"actor": actor, **extra}.items() if v})

    return await page(request, user, "admin/audit.html", {
        "rows": rows, "total": total, "page_no": number, "pages": pages, "actor": actor or "",
        "actors": await service.audit_actors(), "query": q(), "prev_q": q(page=number - 1),
        "next_q": q(page=number + 1),
    })


async def audit_csv(request: Request, user: User) -> Response:
    service = service_of(request)
    company = await service.company()
    actor = _actor(request)

    async def body() -> AsyncIterator[str]:
        yield csvexport.BOM + csvexport.lines([AUDIT_HEADER])
        async for rows in service.audit_pages(actor=actor):
            yield csvexport.lines(
                [r.id, r.time.strftime("%Y-%m-%dT%H:%M:%SZ"), local_time(company, r.time).strftime("%Y-%m-%d %H:%M:%S"),
                 r.actor, r.action, r.target, r.before, r.after] for r in rows)

    stamp = local_time(company, service.clock()).strftime("%Y%m%d")
    return csv_download(body(), f"audit-{stamp}.csv")


routes: list[BaseRoute] = [
    admin_get("/audit", audit_log),
    admin_get("/audit.csv", audit_csv),
]
