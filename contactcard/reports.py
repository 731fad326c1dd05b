"""Reports for the admin console: the dashboard's figures and the scan log's filters. No Starlette here.

Days are the company's local days: their bounds are computed here from ``company.timezone`` (so a day
of 23 or 25 hours around a DST change is still one bar) and handed to the store as UTC instants. What
counts as a person's scan (not a bot) is decided in one place, the store's ``# --- reports`` section.
Adapters reach these through the service (``Service.dashboard``, ``Service.scan_log``), which passes its store,
the company and the time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from . import stats
from .models import Card, Company, Employee, Outcome
from .stats import local_day_bounds
from .store import EventFilter, EventRow, Store

# Hits on links that no longer (or never did) lead to a person: worth an admin's eye.
ALERT_OUTCOMES: tuple[Outcome, ...] = (Outcome.EXPIRED, Outcome.REVOKED, Outcome.DEPARTED, Outcome.UNKNOWN,
                                       Outcome.MALFORMED)
CHART_DAYS = 30
COUNT_CAP = 10_000  # the scan log counts this far, then says "10,000+"
ALERT_DAYS = 7


@dataclass(frozen=True)
class DayCount:
    day: date
    count: int


@dataclass(frozen=True)
class EmployeeCount:
    employee: Employee
    count: int


@dataclass(frozen=True)
class ExpiringCard:
    employee: Employee
    card: Card


@dataclass(frozen=True)
class Dashboard:
    days: tuple[DayCount, ...]
    total: int
    top: tuple[EmployeeCount, ...]
    recent: tuple[EventRow, ...]
    alerts: dict[str, int]  # outcome -> hits in the last ALERT_DAYS days, only outcomes with hits
    alert_events: tuple[EventRow, ...]
    expiring: tuple[ExpiringCard, ...]  # live links that expire within the company's notice, soonest first
    notice_days: int  # that notice (``Company.expiry_notice``), in whole days


def last_days(zone: str, now: datetime, count: int) -> list[tuple[date, datetime, datetime]]:
    """The ``count`` local days ending with today, oldest first, each with its bounds."""
    today = now.astimezone(ZoneInfo(zone)).date()
    return [(d, *local_day_bounds(zone, d)) for d in (today - timedelta(days=n) for n in range(count - 1, -1, -1))]


def _values(outcomes: Sequence[Outcome]) -> tuple[str, ...]:
    return tuple(o.value for o in outcomes)


async def scans_per_day(store: Store, company: Company, now: datetime, days: int = CHART_DAYS) -> list[DayCount]:
    """People's scans company-wide per local day, read through ``stats`` so the chart survives the purge."""
    company_wide = await stats.stats(store, company, now, days=days)
    return [DayCount(date.fromisoformat(d.day), d.scans) for d in company_wide.days]


async def expiring_cards(store: Store, now: datetime, within: timedelta) -> list[ExpiringCard]:
    """Live links that expire within ``within`` of ``now``, soonest first, each with its employee."""
    cards = await store.cards_expiring(now, now + within)
    if not cards:
        return []
    employees = {e.id: e for e in await store.employees()}
    return [ExpiringCard(employees[c.employee_id], c) for c in cards if c.employee_id in employees]


FinishedScans = Callable[[str, str], Awaitable[dict[int, int]]]


async def dashboard(store: Store, company: Company, now: datetime, *, top: int = 10, recent: int = 15,
                    finished_scans: FinishedScans | None = None) -> Dashboard:
    """``finished_scans(first, last)`` gives each employee's scans over finished days (the service caches it:
    those totals no longer change); today's are read fresh, so the ranking costs the same whatever the history."""
    days = await scans_per_day(store, company, now)
    until = now + timedelta(seconds=1)
    first, today = days[0].day, days[-1].day
    yesterday = (today - timedelta(days=1)).isoformat()
    finished = await (finished_scans or store.employee_scans)(first.isoformat(), yesterday)
    counts = dict(finished)
    for employee_id, n in (await store.employee_scans(today.isoformat(), today.isoformat())).items():
        counts[employee_id] = counts.get(employee_id, 0) + n
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    top_rows = []
    for employee_id, count in ranked:
        employee = await store.employee(employee_id)
        if employee is not None:
            top_rows.append(EmployeeCount(employee, count))
    alert_since = now - timedelta(days=ALERT_DAYS)
    by_outcome = await store.count_by_outcome(alert_since, until, _values(ALERT_OUTCOMES))
    alerts = {o.value: by_outcome[o.value] for o in ALERT_OUTCOMES if by_outcome.get(o.value)}
    alert_events = await store.events(EventFilter(outcomes=_values(ALERT_OUTCOMES), since=alert_since), limit=10)
    return Dashboard(
        days=tuple(days), total=sum(d.count for d in days), top=tuple(top_rows),
        recent=tuple(await store.events(limit=recent)),
        alerts=alerts, alert_events=tuple(alert_events),
        expiring=tuple(await expiring_cards(store, now, company.expiry_notice)),
        notice_days=company.expiry_notice.days,
    )


@dataclass(frozen=True)
class ScanFilter:
    """The scan log's filters; dates are local days in the company's zone, both ends included."""

    employee_id: int | None = None
    outcome: Outcome | None = None
    start: date | None = None
    end: date | None = None

    def events(self, zone: str) -> EventFilter:
        """The store's filter for these, the local days turned into instants."""
        return EventFilter(
            employee_id=self.employee_id, outcomes=() if self.outcome is None else (self.outcome.value,),
            since=None if self.start is None else local_day_bounds(zone, self.start)[0],
            until=None if self.end is None else local_day_bounds(zone, self.end)[1])


async def scan_log(store: Store, company: Company, flt: ScanFilter, *, limit: int, before_id: int | None = None,
                   after_id: int | None = None) -> list[EventRow]:
    """A page of the log, newest first; ``before_id``/``after_id`` page older/newer (see ``Store.events``)."""
    return await store.events(flt.events(company.timezone), before_id=before_id, after_id=after_id, limit=limit)


@dataclass(frozen=True)
class LogPage:
    """One keyset page of the scan log, newest first, and whether there is a page each way from it."""

    events: list[EventRow]
    newer: bool
    older: bool


async def scan_log_page(store: Store, company: Company, flt: ScanFilter, *, limit: int, before_id: int | None = None,
                        after_id: int | None = None) -> LogPage:
    """The page older than ``before_id`` or newer than ``after_id`` (which wins), or the newest; each costs the
    same however deep. One row beyond the page says whether there is another that way."""
    if after_id is not None:
        before_id = None
    rows = await scan_log(store, company, flt, limit=limit + 1, before_id=before_id, after_id=after_id)
    more = len(rows) > limit
    events = (rows[1:] if more else rows) if after_id is not None else rows[:limit]
    return LogPage(events, newer=bool(events) and (before_id is not None or (after_id is not None and more)),
                   older=bool(events) and (after_id is not None or more))


async def count_scan_log(store: Store, company: Company, flt: ScanFilter) -> int:
    """The number of matching events, counted up to ``COUNT_CAP + 1`` (shown as "10,000+")."""
    return await store.count_events(flt.events(company.timezone), cap=COUNT_CAP)
