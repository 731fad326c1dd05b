"""``/api/v1/scans``: the scan log with the console's filters and keyset pages, its figures, its CSV export."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from ... import reports
from ...models import ApiScope
from ..admin.scans import csv_response
from .operations import Call, Operation
from .shapes import ScanFilterQuery, ScanOut, ScanPage, ScanPageQuery, StatsOut, StatsQuery


def _filter(q: ScanFilterQuery) -> reports.ScanFilter:
    return reports.ScanFilter(employee_id=q.employee_id, outcome=q.outcome, start=q.from_, end=q.to)


def _next(q: ScanPageQuery, **bound: int) -> str:
    params = {"employee_id": q.employee_id, "outcome": q.outcome.value if q.outcome else None,
              "from": q.from_.isoformat() if q.from_ else None, "to": q.to.isoformat() if q.to else None,
              **bound, "limit": q.limit}
    return urlencode({k: v for k, v in params.items() if v is not None})


async def search_scans(call: Call) -> ScanPage:
    """Newest first; like the console's "Newer"/"Older" links, a page costs the same however deep it is."""
    q: ScanPageQuery = call.query
    flt = _filter(q)
    found = await call.service.scan_log_page(flt, limit=q.limit, before_id=q.before, after_id=q.after)
    events = found.events
    total = await call.service.count_scan_log(flt)
    return ScanPage(items=[ScanOut.of(r) for r in events],
                    older=_next(q, before=events[-1].id) if found.older else None,
                    newer=_next(q, after=events[0].id) if found.newer else None,
                    total=min(total, reports.COUNT_CAP), total_capped=total > reports.COUNT_CAP)


async def scan_stats(call: Call) -> StatsOut:
    q: StatsQuery = call.query
    return StatsOut.of(await call.service.stats(employee_id=q.employee_id, days=q.days))


async def export_scans(call: Call) -> Response:
    return await csv_response(call.service, _filter(call.query))


OPERATIONS = (
    Operation("GET", "/scans", search_scans, ApiScope.SCANS, "Search the scan log", "scans", query=ScanPageQuery,
              returns=ScanPage),
    Operation("GET", "/scans/stats", scan_stats, ApiScope.SCANS, "People's scans per local day", "scans",
              query=StatsQuery, returns=StatsOut),
    Operation("GET", "/scans/export.csv", export_scans, ApiScope.SCANS, "Export the scan log as CSV", "scans",
              query=ScanFilterQuery, media="text/csv",
              description="UTF-8 with BOM, formula cells neutralised, streamed page by page (the console's "
                          "export). Pinned to the events stored when it starts."),
)
