"""Counting people, not bots: per-day scans, unique visitors, clicks and vCard saves; totals and retention.

Days are local days in the company's time zone. ``daily_totals`` is kept as events are stored (each batch of
scans adds to it in its own transaction), so reports read aggregates whatever the history, and charts survive
the deletion of raw events. Events stored before that (a database upgraded from an earlier version) are the
backlog, rolled up day by day by the daily job, by ``contactcard purge`` and before any purge. Bots are
recorded but never counted as scans, visitors, clicks or saves: they have their own column.

- scans: people who opened the link's page (live, expired, revoked or departed)
- visitors: distinct daily visitor keys among those scans
- clicks / clickers: channel buttons followed, and by how many distinct visitors
- click rate: clickers / visitors, the share of scans that led to a channel

Adapters reach these through the service (``Service.stats``, ``Service.purge``), which passes its store, the
company and the time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .models import Company, DayTotals
from .store import Store

if TYPE_CHECKING:  # the service calls in here; only the daily job calls back
    from .service import Service

log = logging.getLogger(__name__)
PURGE_CHUNK = 5000
MAX_DAYS = 3660


@dataclass(frozen=True)
class Stats:
    """One scope (an employee, a card, or the whole company) over consecutive days, oldest first."""

    employee_id: int | None
    card_id: int | None
    days: tuple[DayTotals, ...]

    @property
    def total(self) -> DayTotals:
        fields = ("scans", "visitors", "clicks", "clickers", "vcards", "bots")
        sums = {f: sum(getattr(d, f) for d in self.days) for f in fields}
        return DayTotals(f"{self.days[0].day}..{self.days[-1].day}" if self.days else "", **sums)

    def as_json(self) -> dict[str, object]:
        def one(d: DayTotals) -> dict[str, object]:
            return {"day": d.day, "scans": d.scans, "unique_visitors": d.visitors, "clicks": d.clicks,
                    "clicking_visitors": d.clickers, "vcards": d.vcards, "bots": d.bots,
                    "click_rate": round(d.click_rate, 4)}

        return {"employee_id": self.employee_id, "card_id": self.card_id, "total": one(self.total),
                "days": [one(d) for d in self.days]}


async def roll_up(store: Store, company: Company, now: datetime, *, paced: bool = False) -> int:
    """Count the backlog: the days of events stored before totals were kept live; returns the days written.

    Events are added to the daily totals as they are stored (see ``Store.append_events``); only events from
    before that (an upgrade, an import) need this. Each day is counted on a read-only connection and written in
    its own short transaction, so scans keep committing while a long backlog is rolled up.
    """
    zone = ZoneInfo(company.timezone)
    end = await store.backlog_end()
    oldest = await store.oldest_event_time()
    if end is None or oldest is None:
        return 0
    yesterday = now.astimezone(zone).date() - timedelta(days=1)
    through = await store.totals_through()
    day = oldest.astimezone(zone).date()
    if through:
        day = max(day, date.fromisoformat(through) + timedelta(days=1))
    written = 0
    while day <= end.astimezone(zone).date():
        start, stop = local_day_bounds(zone, day)
        began = asyncio.get_running_loop().time()
        await store.recount_day(day.isoformat(), start, stop, keep_visitors=day >= yesterday)
        if paced:  # half the time at most: a backlog at start-up must not halve the scans served meanwhile
            await asyncio.sleep(asyncio.get_running_loop().time() - began)
        written += 1
        day += timedelta(days=1)
    return written


async def drop_finished_visitor_sets(store: Store, company: Company, now: datetime) -> None:
    """Visitor sets of days before yesterday are final: delete them in bounded chunks."""
    yesterday = now.astimezone(ZoneInfo(company.timezone)).date() - timedelta(days=1)
    while True:
        if await store.drop_visitor_sets(yesterday.isoformat(), PURGE_CHUNK) < PURGE_CHUNK:
            return
        await asyncio.sleep(0)  # let the scan writer in between chunks


async def stats(store: Store, company: Company, now: datetime, *, employee_id: int | None = None,
                card_id: int | None = None, days: int = 30) -> Stats:
    """Counts per day for the last ``days`` local days (today included) at one scope, from the daily totals.

    The totals are kept as events are stored, so the cost does not grow with the history kept.
    """
    days = max(1, min(days, MAX_DAYS))
    zone = ZoneInfo(company.timezone)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    if card_id is not None:
        record = await store.card(card_id)
        employee_id = record.card.employee_id if record is not None else -1
    scope = (employee_id or 0, card_id or 0)
    stored = {t.day: t for t in await store.stored_totals(first.isoformat(), today.isoformat(), *scope)}
    out = []
    day = first
    while day <= today:
        out.append(_day(day.isoformat(), stored.get(day.isoformat())))
        day += timedelta(days=1)
    return Stats(employee_id, card_id, tuple(out))


def _day(key: str, t: DayTotals | None) -> DayTotals:
    return DayTotals(key) if t is None else dataclasses.replace(t, day=key)


async def purge(store: Store, company: Company, now: datetime, *, paced: bool = False) -> int:
    """Delete events older than the company's retention, after rolling up their days; returns rows deleted."""
    await roll_up(store, company, now, paced=paced)
    await drop_finished_visitor_sets(store, company, now)
    cutoff = now - timedelta(days=company.retention_days)
    deleted = 0
    while True:
        n = await store.delete_events_before(cutoff, PURGE_CHUNK)
        deleted += n
        if n < PURGE_CHUNK:
            return deleted
        await asyncio.sleep(0)  # let the scan writer in between chunks


def local_day_bounds(zone: str | ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, as aware datetimes (DST-safe; compare them in any zone)."""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    return datetime.combine(day, time(0), tzinfo=tz), datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


Sleep = Callable[[float], Awaitable[None]]


def seconds_until_next_run(now: datetime, zone: ZoneInfo, at: time = time(3, 17)) -> float:
    """Seconds from ``now`` to the next local ``at`` (a quiet hour, just after the day has turned)."""
    local = now.astimezone(zone)
    target = datetime.combine(local.date(), at, zone)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), at, zone)
    return max(1.0, (target - local).total_seconds())


async def daily_job(service: Service, sleep: Sleep = asyncio.sleep) -> None:
    """Run inside the server: roll up and purge once at start, then every day at a quiet local hour."""
    while True:
        try:
            deleted = await service.purge(paced=True)
            if deleted:
                log.info("purged %d scan events older than the retention period", deleted)
            wait = seconds_until_next_run(service.clock(), ZoneInfo((await service.company()).timezone))
        except Exception:  # the job must outlive a bad night (disk full, locked database)...
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # ...but not a shutdown: an error raised while cancelling must not swallow the cancel
            log.exception("daily scan maintenance failed; will retry in an hour")
            wait = 3600.0
        await sleep(wait)
