"""Reports from aggregates: the daily totals kept live as scans are stored agree with a recount from the raw
events (people, bots, unique visitors, the company's local days), and the scan log's filters use indexes."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from contactcard.app import create_app
from contactcard.config import Settings
from contactcard.models import DayTotals, Outcome, ScanEvent
from contactcard.stats import local_day_bounds
from contactcard.store import EventFilter, Store

from .conftest import FakeClock, Harness
from .test_analytics import ANDROID, IPHONE, LINE_APP, LINE_PREVIEW


def _insert(h: Harness, events: list[ScanEvent]) -> None:
    async def insert() -> None:
        async with h.service._store.transaction():
            await h.service._store.insert_events(events)

    h.run(insert)


def _stored(h: Harness, day: date, recount: list[DayTotals]) -> list[DayTotals]:
    store: Store = h.service._store
    out = []
    for t in recount:
        found = h.run(store.stored_totals, day.isoformat(), day.isoformat(), t.employee_id, t.card_id)
        out.extend(found)
    return out


def test_live_totals_agree_with_a_recount_from_the_events(harness: Harness, clock: FakeClock) -> None:
    issued = harness.seed()
    path = harness.path(issued)
    taro = issued.card.employee_id
    page = harness.client.get(path, headers={"user-agent": IPHONE}).text
    go = path + "/go/" + page.split(path + "/go/")[1].split('"')[0]
    # Tokyo's day turns at 15:00 UTC (no DST): scans on both sides of it, by people and by a preview bot
    for when in (datetime(2026, 11, 27, 14, 59, 59, tzinfo=UTC), datetime(2026, 11, 27, 15, 0, tzinfo=UTC),
                 datetime(2026, 11, 28, 1, 0, tzinfo=UTC), datetime(2026, 11, 28, 14, 59, tzinfo=UTC)):
        clock.now = when
        for ua in (IPHONE, ANDROID, LINE_APP, LINE_PREVIEW, IPHONE):
            harness.client.get(path, headers={"user-agent": ua})
            harness.client.get(go, headers={"user-agent": ua})
        harness.client.get(path + "/vcard", headers={"user-agent": ANDROID})
        harness.client.get("/c/AAAAAAAAAAAAAAAAAAAA", headers={"user-agent": IPHONE})  # an unknown link
    # batches with repeated visitors inside one batch and across batches; an event with no card
    t0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    batch = [ScanEvent(time=t0 + timedelta(minutes=i), outcome=o, card_id=issued.card.id, employee_id=taro,
                       visitor_key=f"k{i % 3}", is_bot=i % 5 == 4)
             for i, o in enumerate([Outcome.VIEW, Outcome.CLICK, Outcome.EXPIRED, Outcome.VIEW, Outcome.VCARD] * 4)]
    _insert(harness, batch[:7])
    _insert(harness, batch[7:])
    _insert(harness, [ScanEvent(time=t0, outcome=Outcome.REVOKED, employee_id=taro, visitor_key="k1"),
                      ScanEvent(time=t0, outcome=Outcome.MALFORMED, visitor_key="k9")])
    # one batch across Tokyo's midnight, a microsecond apart, two of its events in one UTC second
    turn = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    _insert(harness, [ScanEvent(time=turn - timedelta(microseconds=d), outcome=Outcome.VIEW, card_id=issued.card.id,
                                employee_id=taro, visitor_key=f"m{d}") for d in (1, 0, 999_999, 1, 0)])

    checked = 0
    for day in (date(2026, 11, 27), date(2026, 11, 28)):
        start, end = local_day_bounds("Asia/Tokyo", day)
        recount = sorted(harness.run(harness.service._store.totals_from_events, start, end),
                         key=lambda t: (t.employee_id, t.card_id))
        assert {(t.employee_id, t.card_id) for t in recount} == {(0, 0), (taro, 0), (taro, issued.card.id)}
        stored = sorted(_stored(harness, day, recount), key=lambda t: (t.employee_id, t.card_id))
        assert [t.__dict__ | {"day": ""} for t in stored] == [t.__dict__ for t in recount], day
        checked += 1
    company = next(t for t in recount if t.employee_id == 0)
    assert company.bots > 0 and company.visitors > 0 and company.clickers > 0 and company.vcards > 0
    assert checked == 2


def test_events_stored_before_live_totals_are_rolled_up_then_counted_live(settings: Settings,
                                                                          clock: FakeClock) -> None:
    """An upgrade: a database of the previous version holds today's first scans; the server's daily job rolls
    them up, and the scans that follow add to the same day without counting a visitor twice."""
    async def previous_version() -> None:
        store = await Store.open(settings.db_path, migrate_to=7)
        await store.close()

    asyncio.run(previous_version())
    with closing(sqlite3.connect(settings.db_path)) as conn, conn:  # 01:00-04:00 on the 28th in Tokyo
        conn.executemany("INSERT INTO events (time, outcome, visitor_key) VALUES (?, 'view', ?)",
                         [(f"2026-11-27T{16 + i}:00:00.000000Z", f"v{i % 2}") for i in range(4)])
    with TestClient(create_app(settings, clock=clock), base_url="http://127.0.0.1") as client:
        h = Harness(client)
        h.run(h.service.purge)  # the daily job's work, awaited here (it also ran once at start)
        today = h.run(h.service.stats, days=1).days[-1]
        assert (today.day, today.scans, today.visitors) == ("2026-11-28", 4, 2)
        _insert(h, [ScanEvent(time=clock.now, outcome=Outcome.VIEW, visitor_key=k) for k in ("v0", "v7")])
        today = h.run(h.service.stats, days=1).days[-1]
        assert (today.scans, today.visitors) == (6, 3), "v0 was counted by the roll-up already, v7 is new"


SEARCHES = [
    {},
    {"employee_id": 1},
    {"outcomes": ("expired",)},
    {"since": datetime(2026, 11, 1, tzinfo=UTC), "until": datetime(2026, 11, 2, tzinfo=UTC)},
    {"employee_id": 1, "since": datetime(2026, 11, 1, tzinfo=UTC)},
    {"outcomes": ("click",), "until": datetime(2026, 11, 2, tzinfo=UTC)},
]


@pytest.mark.parametrize("filters", SEARCHES)
@pytest.mark.parametrize("keyset", [False, True])
def test_each_scan_log_filter_is_served_by_an_index_in_log_order(harness: Harness, filters: dict[str, object],
                                                                 keyset: bool) -> None:
    issued = harness.seed()
    _insert(harness, [ScanEvent(time=datetime(2026, 11, 1, 3, tzinfo=UTC), outcome=Outcome.VIEW,
                                card_id=issued.card.id, employee_id=issued.card.employee_id)])
    plan = harness.run(harness.service._store.events_plan, EventFilter(**filters),  # type: ignore[arg-type]
                       before_id=1 if keyset else None)
    events = [line for line in plan if "events" in line and "employees" not in line]
    assert events and all("USING INDEX" in line or "USING COVERING INDEX" in line for line in events), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan


@pytest.mark.parametrize(("zone", "when"), [
    ("Asia/Tokyo", datetime(2026, 11, 27, 14, 59, 59, 999_999, tzinfo=UTC)),
    ("Asia/Tokyo", datetime(2026, 11, 27, 15, 0, tzinfo=UTC)),
    ("Asia/Kolkata", datetime(2026, 11, 27, 18, 29, 59, 999_999, tzinfo=UTC)),  # +05:30: midnight at :30
    ("Asia/Kolkata", datetime(2026, 11, 27, 18, 30, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 1, 4, 59, 59, 999_999, tzinfo=UTC)),  # the day DST ends
    ("America/New_York", datetime(2026, 11, 1, 5, 0, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 2, 4, 59, 59, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 2, 5, 0, tzinfo=UTC)),
])
def test_the_scan_paths_local_day_is_the_companys_date_in_every_zone(zone: str, when: datetime) -> None:
    """``local_day`` (the visitor pseudonym's day, computed once a UTC second) agrees with the local time's date
    on each side of midnight, asked right after another zone's same second and a neighbouring instant."""
    from contactcard.service import DEFAULT_COMPANY, local_day, local_time

    company = dataclasses.replace(DEFAULT_COMPANY, timezone=zone)
    for before in (when - timedelta(microseconds=1), when + timedelta(microseconds=1), when):
        local_day(dataclasses.replace(DEFAULT_COMPANY, timezone="UTC"), before)
        local_day(company, before)
        assert local_day(company, when) == local_time(company, when).date().isoformat()
