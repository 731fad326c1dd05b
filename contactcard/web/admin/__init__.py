"""The admin console, /admin: the dashboard, and the route table of every admin area (one module each).

Every route is declared with ``base.admin_get`` / ``base.admin_post`` (or ``employees.employee_post``): the
handler runs only for an admin (303 to sign-in, 403 for employees), and a POST's only once its CSRF token
matched (403 before anything is done; see ``web.forms``).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

from ... import chart
from ...models import ContactcardError, User
from ..context import app_context
from . import api_tokens, audit, cards, employees, leads, scans, settings, sso, webhooks
from .base import admin_get, admin_post, back, field, page, said


class _Drawn:
    """Markup drawn only when the page is rendered: the page reused from the cache (below) does without it."""

    def __init__(self, draw: Callable[[], str]) -> None:
        self._draw = draw

    def __str__(self) -> str:
        return self._draw()


async def dashboard(request: Request, user: User, *, error: str = "", days: str | None = None,
                    status: int = 200) -> Response:
    service = app_context(request).service
    t = app_context(request).renderer.translator(request)
    data = await service.dashboard()
    webhook_alerts = await app_context(request).webhooks.alerts()

    def draw() -> str:  # ~80 us: once per figures and language, not on every reload
        bars = [chart.Bar(label=str(d.day.day), value=d.count, detail=f"{d.day.isoformat()}: {d.count}")
                for d in data.days]
        first, last = data.days[0].day.isoformat(), data.days[-1].day.isoformat()
        return chart.bar_chart(
            bars, chart_id="scans-chart", title=t.gettext("Scans per day, last 30 days"),
            desc=t.gettext("%(total)s scans from %(first)s to %(last)s.", total=data.total, first=first, last=last),
        )

    # Pinned to the figures (the same object while the service reuses them): an admin holding reload down is
    # answered from the page rendered once per DASHBOARD_TTL, so the scans served meanwhile keep their pace.
    default_days = (await service.company()).default_card_days
    return await page(request, user, "admin/dashboard.html",
                      {"data": data, "chart_svg": _Drawn(draw), "webhook_alerts": webhook_alerts,
                       "extend_days": default_days if days is None else days, "error": error},
                      status=status, pins=None if error else (data, webhook_alerts))


async def extend_expiring(request: Request, user: User, form: FormData) -> Response:
    """The dashboard's "extend all": every link about to expire, to the days given from now."""
    try:
        extended = await app_context(request).service.extend_expiring(days=cards.form_days(form), actor=user.email)
    except ContactcardError as err:
        return await dashboard(request, user, error=said(request, err), days=field(form, "days"), status=400)
    return back("/admin", "extended_all" if extended else "extended_none")


routes: list[BaseRoute] = [
    admin_get("/admin", dashboard),
    Mount("/admin", routes=[
        admin_get("/", dashboard),
        admin_post("/cards/extend-expiring", extend_expiring),
        *employees.routes,
        *cards.routes,
        *scans.routes,
        *settings.routes,
        *sso.routes,
        *leads.routes,
        *audit.routes,
        *webhooks.routes,
        *api_tokens.routes,
    ]),
]
