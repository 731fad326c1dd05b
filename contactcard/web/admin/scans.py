"""The scan log: filter by employee, outcome and date range (company-local days), paginated, and CSV export.

Filters come from the query string; a value that does not parse (including the calendar's first and last
days) is reported on the page, which answers 400 with that filter ignored, so a hand-edited URL never gives a
500; the CSV export then shows that page instead of exporting more than was asked for. The CSV streams page by
page, pinned to the newest id at the start, so scans arriving during the download neither repeat nor shift rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ... import csvexport, reports
from ...models import Outcome, User
from ...service import Service, local_time
from .base import PAGE_SIZE, admin_get, csv_download, page, parse_day, service_of


def parse_filter(request: Request) -> tuple[reports.ScanFilter, list[str]]:
    """The filter from the query string and the names of the fields that were ignored as invalid."""
    q = request.query_params
    bad: list[str] = []
    employee_id = None
    raw = q.get("employee", "")
    if raw:
        if raw.isascii() and raw.isdigit() and len(raw) <= 12:
            employee_id = int(raw)
        else:
            bad.append("employee")
    outcome = None
    raw = q.get("outcome", "")
    if raw:
        try:
            outcome = Outcome(raw)
        except ValueError:
            bad.append("outcome")
    start, end = parse_day(q.get("from", "")), parse_day(q.get("to", ""))
    if q.get("from", "").strip() and start is None:
        bad.append("from")
    if q.get("to", "").strip() and end is None:
        bad.append("to")
    if start and end and start > end:
        bad.append("to")
        end = None
    return reports.ScanFilter(employee_id=employee_id, outcome=outcome, start=start, end=end), bad


def _query(flt: reports.ScanFilter, **extra: object) -> str:
    params = {"employee": flt.employee_id, "outcome": flt.outcome.value if flt.outcome else None,
              "from": flt.start.isoformat() if flt.start else None, "to": flt.end.isoformat() if flt.end else None,
              **extra}
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


async def scan_log(request: Request, user: User) -> Response:
    flt, bad = parse_filter(request)
    return await _log_page(request, user, flt, bad)


def _event_id(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


async def _log_page(request: Request, user: User, flt: reports.ScanFilter, bad: list[str]) -> Response:
    """The page of the log; a filter that was not understood makes it a 400 (with the message, filter ignored).

    Keyset pages (``?before=ID`` older, ``?after=ID`` newer): each costs the same however deep; the count stops
    at ``reports.COUNT_CAP`` ("10,000+").
    """
    service = service_of(request)
    total = await service.count_scan_log(flt)
    found = await service.scan_log_page(flt, limit=PAGE_SIZE, before_id=_event_id(request, "before"),
                                        after_id=_event_id(request, "after"))
    events = found.events
    return await page(request, user, "admin/scans.html", {
        "events": events, "flt": flt, "bad": bad,
        "total": f"{reports.COUNT_CAP:,}+" if total > reports.COUNT_CAP else f"{total:,}",
        "employees": await service.employees(), "outcomes": list(Outcome), "query": _query(flt),
        "newer_q": _query(flt, after=events[0].id) if found.newer else None,
        "older_q": _query(flt, before=events[-1].id) if found.older else None,
    }, status=400 if bad else 200)


async def scan_csv(request: Request, user: User) -> Response:
    service = service_of(request)
    flt, bad = parse_filter(request)
    if bad:  # never export more than was asked for: show the log and what was not understood instead
        return await _log_page(request, user, flt, bad)
    return await csv_response(service, flt)


async def csv_response(service: Service, flt: reports.ScanFilter) -> Response:
    """The scan log's CSV download (also the API's export), streamed page by page."""
    company = await service.company()

    async def body() -> AsyncIterator[str]:
        yield csvexport.BOM + csvexport.lines([csvexport.EVENT_HEADER])
        async for text, _ in service.scan_csv(flt):
            yield text

    stamp = local_time(company, service.clock()).strftime("%Y%m%d")
    return csv_download(body(), f"scans-{stamp}.csv")


routes: list[BaseRoute] = [
    admin_get("/scans", scan_log),
    admin_get("/scans.csv", scan_csv),
]
