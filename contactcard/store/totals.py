"""Daily totals: kept with each batch of events, rolled up from raw events, purged."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..models import (
    SCAN_OUTCOMES,
    DayTotals,
)
from .base import StoreBase, parse_ts, ts

_SCAN_OUTCOMES = "(" + ", ".join(f"'{o.value}'" for o in SCAN_OUTCOMES) + ")"  # enum constants, not input
_SCAN_VALUES = tuple(o.value for o in SCAN_OUTCOMES)
_SCANS_AND_CLICKS = _SCAN_OUTCOMES[:-1] + ", 'click')"
_TOTALS = f"""
    SUM(is_bot = 0 AND outcome IN {_SCAN_OUTCOMES}),
    SUM(is_bot),
    COUNT(DISTINCT CASE WHEN is_bot = 0 AND outcome IN {_SCAN_OUTCOMES} THEN visitor_key END),
    SUM(is_bot = 0 AND outcome = 'click'),
    COUNT(DISTINCT CASE WHEN is_bot = 0 AND outcome = 'click' THEN visitor_key END),
    SUM(is_bot = 0 AND outcome = 'vcard')"""


class TotalsStore(StoreBase):
    # --- analytics (see stats.py) -------------------------------------------------------------

    async def totals_through(self) -> str:
        """The last local day of the backlog (see ``backlog_end``) whose totals are stored ('' for none)."""
        return str(await self._scalar("SELECT totals_through FROM analytics_state WHERE id = 1") or "")

    async def newest_event_id(self) -> int:
        return int(await self._scalar("SELECT COALESCE(MAX(id), 0) FROM events"))

    async def oldest_event_time(self) -> datetime | None:
        text = await self._scalar("SELECT MIN(time) FROM events")
        return None if text is None else parse_ts(text)

    async def backlog_end(self) -> datetime | None:
        """The time of the last event stored before totals were kept live (None: no such event is left).

        Events since are added to ``daily_totals`` as they are stored; the ones before are the roll-up's backlog.
        """
        text = await self._scalar(
            """SELECT time FROM events WHERE id <= (SELECT live_after_id FROM analytics_state WHERE id = 1)
               ORDER BY id DESC LIMIT 1""")
        return None if text is None else parse_ts(text)

    async def totals_from_events(self, start: datetime, end: datetime) -> list[DayTotals]:
        """Totals of the events in [start, end), counted on a reader; see ``_count_totals``."""
        return await self.read(lambda conn: _count_totals(conn, start, end))

    async def recount_day(self, day: str, start: datetime, end: datetime, *, keep_visitors: bool) -> None:
        """Replace one local day's totals with a count of its events and move totals_through to it.

        The events are counted on a reader, outside any lock; the write is one short transaction. Should a
        scan for that day have been stored since the reader's snapshot, the day is counted again inside the
        transaction (bounded by one day). ``keep_visitors`` also records the day's visitors, so that scans
        still arriving for it are counted once (today, yesterday).
        """
        def count(conn: sqlite3.Connection) -> tuple[list[DayTotals], int]:
            newest = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            return _count_totals(conn, start, end), int(newest)

        totals, newest = await self.read(count)
        async with self.transaction():
            if await self._scalar("SELECT EXISTS (SELECT 1 FROM events WHERE id > ? AND time >= ? AND time < ?)",
                                  (newest, ts(start), ts(end))):
                totals = await self._on_writer_thread(_count_totals, start, end)
            await self.save_totals(day, totals)
            if keep_visitors:
                await self._conn.execute(_REBUILD_VISITORS, (day, ts(start), ts(end)) * 3)

    async def drop_visitor_sets(self, before_day: str, limit: int = 5000) -> int:
        """Delete up to ``limit`` visitor rows of days before ``before_day`` (finished: their counts are final)."""
        if not await self._scalar("SELECT EXISTS (SELECT 1 FROM daily_visitors WHERE day < ?)", (before_day,)):
            return 0  # the common case: no write lock taken at all
        async with self.transaction():  # one statement; waits its turn (in slices) behind another server's chunk
            cur = await self._conn.execute(
                """DELETE FROM daily_visitors WHERE (day, employee_id, card_id, kind, visitor_key) IN
                   (SELECT day, employee_id, card_id, kind, visitor_key FROM daily_visitors WHERE day < ? LIMIT ?)""",
                (before_day, limit))
            return int(cur.rowcount)

    async def save_totals(self, day: str, totals: Iterable[DayTotals]) -> None:
        """Replace the stored totals of one day and move totals_through to it; the caller holds a transaction."""
        await self._conn.execute("DELETE FROM daily_totals WHERE day = ?", (day,))
        await self._conn.executemany(
            """INSERT INTO daily_totals (day, employee_id, card_id, scans, bots, visitors, clicks, clickers, vcards)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [(day, t.employee_id, t.card_id, t.scans, t.bots, t.visitors, t.clicks, t.clickers, t.vcards)
             for t in totals],
        )
        await self._conn.execute("UPDATE analytics_state SET totals_through = MAX(totals_through, ?) WHERE id = 1",
                                 (day,))

    async def stored_totals(self, first_day: str, last_day: str, employee_id: int, card_id: int) -> list[DayTotals]:
        rows = await self._rows(
            """SELECT * FROM daily_totals WHERE day BETWEEN ? AND ? AND employee_id = ? AND card_id = ?
               ORDER BY day""",
            (first_day, last_day, employee_id, card_id),
        )
        return [DayTotals(r["day"], employee_id=r["employee_id"], card_id=r["card_id"], scans=r["scans"],
                          bots=r["bots"], visitors=r["visitors"], clicks=r["clicks"], clickers=r["clickers"],
                          vcards=r["vcards"]) for r in rows]

    async def delete_events_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` of the oldest events before ``cutoff`` (a bounded chunk); returns rows deleted.

        Checked on a reader first, so a day with nothing to purge takes no write lock; the delete is one
        statement in its own short transaction, which waits its turn (``transaction``'s patience) while another
        program deletes a chunk: two servers purge at the same hour, and a bare statement found the database
        locked and failed the night's job.
        """
        if not await self._scalar("SELECT EXISTS (SELECT 1 FROM events WHERE time < ?)", (ts(cutoff),)):
            return 0
        async with self.transaction():
            cur = await self._conn.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ? ORDER BY time LIMIT ?)",
                (ts(cutoff), limit),
            )
            return int(cur.rowcount)




# What a report counts as a person's scan: bots (link-preview fetchers, crawlers) are recorded, never counted.
_COUNTED = "events.is_bot = 0"
DEFAULT_TIMEZONE = "Asia/Tokyo"  # the company table's default, for events recorded before a profile exists
_ROWS_PER_STATEMENT = 1000  # multi-row statements stay far under SQLite's 32,766 bound parameters


_REBUILD_VISITORS = f"""
    INSERT INTO daily_visitors (day, employee_id, card_id, kind, visitor_key)
    SELECT ?, 0, 0, CASE outcome WHEN 'click' THEN 'click' ELSE 'scan' END, visitor_key FROM events
        WHERE time >= ? AND time < ? AND is_bot = 0 AND outcome IN {_SCANS_AND_CLICKS}
    UNION ALL
    SELECT ?, employee_id, 0, CASE outcome WHEN 'click' THEN 'click' ELSE 'scan' END, visitor_key FROM events
        WHERE time >= ? AND time < ? AND is_bot = 0 AND outcome IN {_SCANS_AND_CLICKS}
          AND employee_id IS NOT NULL
    UNION ALL
    SELECT ?, employee_id, card_id, CASE outcome WHEN 'click' THEN 'click' ELSE 'scan' END, visitor_key FROM events
        WHERE time >= ? AND time < ? AND is_bot = 0 AND outcome IN {_SCANS_AND_CLICKS}
          AND employee_id IS NOT NULL AND card_id IS NOT NULL
    ON CONFLICT DO NOTHING"""  # noqa: S608 (constants only)


_UPSERT_TOTALS = """
    INSERT INTO daily_totals (day, employee_id, card_id, scans, bots, visitors, clicks, clickers, vcards)
    VALUES {marks}
    ON CONFLICT (day, employee_id, card_id) DO UPDATE SET scans = scans + excluded.scans, bots = bots + excluded.bots,
        visitors = visitors + excluded.visitors, clicks = clicks + excluded.clicks,
        clickers = clickers + excluded.clickers, vcards = vcards + excluded.vcards"""


def _count_totals(conn: sqlite3.Connection, start: datetime, end: datetime) -> list[DayTotals]:
    """Totals of the events in [start, end), at card, employee (card 0) and company (0, 0) scope.

    Bots are counted apart; people count as scans (the link's page, live or not), visitors (distinct
    visitor keys among scans), clicks, clickers (distinct visitor keys among clicks) and vCard saves.
    """
    out: list[DayTotals] = []
    for keys, where, group in (
        ("employee_id, card_id", "card_id IS NOT NULL AND employee_id IS NOT NULL", "GROUP BY employee_id, card_id"),
        ("employee_id, 0", "employee_id IS NOT NULL", "GROUP BY employee_id"),
        ("0, 0", "1", "HAVING COUNT(*) > 0"),
    ):
        rows = conn.execute(
            f"""SELECT {keys}, {_TOTALS} FROM events
                WHERE time >= ? AND time < ? AND {where} {group}""",  # noqa: S608 (constants only)
            (ts(start), ts(end)),
        ).fetchall()
        out.extend(DayTotals("", employee_id=int(r[0]), card_id=int(r[1]), scans=int(r[2] or 0), bots=int(r[3] or 0),
                             visitors=int(r[4] or 0), clicks=int(r[5] or 0), clickers=int(r[6] or 0),
                             vcards=int(r[7] or 0)) for r in rows)
    return out


def _chunks(rows: Sequence[tuple[Any, ...]]) -> Iterable[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        yield rows[start:start + _ROWS_PER_STATEMENT]


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)

