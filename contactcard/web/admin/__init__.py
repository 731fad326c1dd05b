"""The admin console, /admin: the dashboard, and the route table of every admin area (one module each).

Every handler starts with ``require_admin`` (303 to sign-in, 403 for employees) and every POST reads its
form through ``csrf_form`` (403 on a bad token, before anything is done); see ``base``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ... import chart
from ..context import app_context
from ..session import require_admin
from . import audit, cards, employees, scans, settings
from .base import page


async def dashboard(request: Request) -> Response:
    user = await require_admin(request)
    service = app_context(request).service
    t = app_context(request).renderer.translator(request)
    data = await service.dashboard()
    bars = [chart.Bar(label=str(d.day.day), value=d.count, detail=f"{d.day.isoformat()}: {d.count}")
            for d in data.days]
    first, last = data.days[0].day.isoformat(), data.days[-1].day.isoformat()
    svg = chart.bar_chart(
        bars, chart_id="scans-chart", title=t.gettext("Scans per day, last 30 days"),
        desc=t.gettext("%(total)s scans from %(first)s to %(last)s.", total=data.total, first=first, last=last),
    )
    return await page(request, user, "admin/dashboard.html", {"data": data, "chart_svg": svg})


routes: list[BaseRoute] = [
    Route("/admin", dashboard, methods=["GET"]),
    Mount("/admin", routes=[
        Route("/", dashboard, methods=["GET"]),
        *employees.routes,
        *cards.routes,
        *scans.routes,
        *settings.routes,
        *audit.routes,
    ]),
]
