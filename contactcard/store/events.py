"""Scan events: the writer's batches, the overflow counts, keyset searches and CSV pages."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..models import (
    Busy,
    Outcome,
    ScanEvent,
)
from .base import StoreBase, _is_busy, parse_ts, ts
from .records import EventFilter, EventRow
from .totals import _SCAN_VALUES, _UPSERT_TOTALS, DEFAULT_TIMEZONE, _chunks, _zone
from .webhooks import enqueue_scans

_INSERT_EVENTS = """INSERT INTO events (time, card_id, employee_id, outcome, channel_id, channel_kind, user_agent,
    referrer, accept_language, visitor_key, is_bot, device, os, browser) VALUES """
_EVENT_MARKS = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
MAX_APPEND = 2000  # 14 parameters a row stays under SQLite's 32,766 bound parameters


class DataChanged(Exception):
    """Another connection committed after the version a batch expected: nothing of the batch was written."""

    def __init__(self, version: int) -> None:
        super().__init__(f"data_version is now {version}")
        self.version = version


class EventStore(StoreBase):
    # --- events -------------------------------------------------------------------------------

    async def insert_events(self, events: Sequence[ScanEvent]) -> None:
        """Append events and add them to the daily totals; the caller holds the transaction."""
        if events:
            await self._on_writer_thread(_insert_and_count, events)

    async def append_events(self, events: Sequence[ScanEvent], *, expect_version: int | None = None) -> None:
        """Commit a batch of events and their share of the daily totals in one transaction, in one round trip
        to the database thread (BEGIN, INSERTs and COMMIT as separate calls would be five). Serialised with
        ``transaction()``. With ``expect_version``: DataChanged, and nothing written, unless ``PRAGMA
        data_version`` still reads that under the write lock (no other connection has committed since)."""
        if not events:
            return
        async with self._write_lock:
            try:
                await self._on_writer_thread(_commit_batch, events, expect_version)
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):  # nothing was written: the caller may try again
                    raise Busy("the database is locked by another connection") from None
                raise

    async def check_data_version(self, expected: int | None) -> None:
        """Inside a transaction: DataChanged unless ``PRAGMA data_version`` reads ``expected`` (None: no check)."""
        if expected is not None:
            await self._on_writer_thread(_check_version, expected)

    async def add_overflow(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Count rate-limited events as numbers per (UTC day, outcome); the caller holds the transaction."""
        await self._conn.executemany(
            """INSERT INTO event_overflow (day, outcome, dropped) VALUES (?, ?, ?)
               ON CONFLICT (day, outcome) DO UPDATE SET dropped = dropped + excluded.dropped""",
            [(day, outcome, n) for (day, outcome), n in counts.items()],
        )

    async def overflow(self) -> dict[tuple[str, str], int]:
        rows = await self._rows("SELECT day, outcome, dropped FROM event_overflow ORDER BY day, outcome")
        return {(r["day"], r["outcome"]): int(r["dropped"]) for r in rows}

    async def events(self, flt: EventFilter | None = None, *, before_id: int | None = None,
                     after_id: int | None = None, limit: int = 50) -> list[EventRow]:
        """The events the filter selects, newest first (by time, then id), each filter served by an index.

        Keyset pages: ``before_id`` gives the rows that follow that event in this order (older), ``after_id``
        the ``limit`` rows just before it (newer), still newest first. A page costs the same however deep it
        is, and rows committed meanwhile never shift, repeat or skip a row of the pages that follow.
        """
        def page(conn: sqlite3.Connection) -> list[EventRow]:
            wanted = flt or EventFilter()
            # Several outcomes: one indexed query each, merged, rather than sorting every row they match.
            rows = [_event_row(r) for one in _each_outcome(wanted)
                    for r in conn.execute(*_search_sql(conn, one, before_id, after_id, limit))]
            rows.sort(key=lambda e: (e.time, e.id), reverse=after_id is None)
            return rows[:limit][::-1] if after_id is not None else rows[:limit]

        return await self.read(page)

    async def count_events(self, flt: EventFilter | None = None, *, cap: int | None = None) -> int:
        """How many events the filter selects; with ``cap``, counting no further than ``cap + 1``."""
        where, params = _event_filter(flt or EventFilter())
        if cap is None:
            return int(await self._scalar(f"SELECT COUNT(*) FROM events WHERE {where}", params))  # noqa: S608
        return int(await self._scalar(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE {where} LIMIT ?)", (*params, cap + 1)))  # noqa: S608

    # --- reports: aggregates for the admin console (grouping by local day is done with bounds from Python) ---

    async def employee_scans(self, first_day: str, last_day: str) -> dict[int, int]:
        """Each employee's people's scans over those local days, from the daily totals (employees with any)."""
        rows = await self._rows(
            """SELECT employee_id, SUM(scans) AS n FROM daily_totals
               WHERE day BETWEEN ? AND ? AND employee_id > 0 AND card_id = 0
               GROUP BY employee_id HAVING SUM(scans) > 0""",
            (first_day, last_day),
        )
        return {int(r["employee_id"]): int(r["n"]) for r in rows}

    async def count_by_outcome(self, since: datetime, until: datetime, outcomes: Sequence[str]) -> dict[str, int]:
        """Every hit with one of ``outcomes`` in [since, until), bots included (alerts are about links, not
        people); read from the (outcome, time) index, so the cost follows those hits, not the history."""
        marks = ", ".join("?" for _ in outcomes)
        rows = await self._rows(
            f"""SELECT outcome, COUNT(*) AS n FROM events WHERE outcome IN ({marks}) AND time >= ? AND time < ?
                GROUP BY outcome""",  # noqa: S608
            (*outcomes, ts(since), ts(until)),
        )
        return {r["outcome"]: int(r["n"]) for r in rows}

    async def event_times(self) -> tuple[datetime, datetime] | None:
        """The oldest and the newest event's time (both read from the index on time), or None without events."""
        row = await self._row("SELECT (SELECT MIN(time) FROM events), (SELECT MAX(time) FROM events)")
        return None if row is None or row[0] is None else (parse_ts(row[0]), parse_ts(row[1]))

    async def export_csv(self, flt: EventFilter | None = None, *, before_id: int | None = None, limit: int = 5000,
                         formula_starts: Sequence[str] = (),
                         offsets: Sequence[tuple[datetime, datetime, int | None]] = (),
                         local: Callable[[str], str]) -> tuple[int | None, str, int]:
        """A keyset page of ``events`` for a CSV export: (the last row's id, or None when the page is not full;
        the rows' lines; how many).

        SQLite builds the whole page's text on the reader thread, one ``printf`` a line joined by
        ``group_concat``, so Python handles one string a page (a Python object a row, or a line built with SQL's
        ``||``, which copies it at every cell, cost more than reading the rows): the cells in
        ``csvexport.EVENT_HEADER`` order (times in UTC ISO 8601, every text cell quoted, a text cell starting
        with one of ``formula_starts`` prefixed with ', see ``csvexport.neutralise``), the local time from
        ``offsets`` ((from, to, minutes east of UTC) pieces: ``csvexport.utc_offsets``). A page with a row
        outside them, or in a piece without whole minutes, is built per row instead, that row's local time
        from ``local`` (the stored time in, "YYYY-MM-DD HH:MM:SS" out).
        """
        # The row's offset as a date modifier (NULL: none known). The local time moves the stored time, cut to
        # whole seconds, by it: the seconds stay as stored, never rounded up into the next minute.
        modifier = ("CASE " + "WHEN events.time >= ? AND events.time < ? THEN ? " * len(offsets) + "END") if offsets \
            else "NULL"
        modifiers = [value for start, end, minutes in offsets
                     for value in (ts(start), ts(end), None if minutes is None else f"{minutes:+d} minutes")]
        local_time = f"datetime(substr(events.time, 1, 19), {modifier})"
        head, tail = _csv_cells(formula_starts)
        head_format, head_args = ",".join(f for f, _ in head), ", ".join(a for _, a in head)
        tail_format, tail_args = ",".join(f for f, _ in tail), ", ".join(a for _, a in tail)
        # No line (NULL, which group_concat skips and count() leaves out) for a row without a known offset.
        line = f"printf(iif(({modifier}) IS NULL, NULL, ?), {head_args}, {local_time}, {tail_args}) AS line"
        wanted = flt or EventFilter()

        def page(conn: sqlite3.Connection) -> tuple[int | None, str, int]:
            sql, params = _search_sql(conn, wanted, before_id, None, limit, columns=line)
            cursor = conn.cursor()
            cursor.row_factory = None
            # The inner query's ORDER BY and LIMIT keep SQLite from merging it into this aggregate: its lines
            # reach group_concat in that order (the tests check it), each built once.
            rows, built, text = cursor.execute(
                f"SELECT count(*), count(line), group_concat(line, '') FROM ({sql})",  # noqa: S608
                [*modifiers, f"{head_format},%s,{tail_format}\r\n", *modifiers, *params]).fetchone()
            if not rows:
                return None, "", 0
            if built < rows:  # a row without a whole-minute offset: this page's lines joined in Python
                sql, params = _search_sql(conn, wanted, before_id, None, limit, columns=(
                    f"printf(?, {head_args}), {local_time}, events.time, printf(?, {tail_args})"))
                text = "".join(f"{first},{here if here is not None else local(stored)},{rest}\r\n"
                               for first, here, stored, rest in cursor.execute(
                                   sql, [head_format, *modifiers, tail_format, *params]))
            if rows < limit:
                return None, text, rows
            sql, params = _search_sql(conn, wanted, before_id, None, 1, columns="events.id", offset=limit - 1)
            return cursor.execute(sql, params).fetchone()[0], text, rows  # the next page starts after this row

        return await self.read(page)

    async def events_plan(self, flt: EventFilter | None = None, *, before_id: int | None = None) -> list[str]:
        """SQLite's plan for that ``events`` query (EXPLAIN QUERY PLAN), to check that an index serves it."""
        def plan(conn: sqlite3.Connection) -> list[str]:
            sql, params = _search_sql(conn, flt or EventFilter(), before_id, None, 50)
            return [str(r["detail"]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]

        return await self.read(plan)


def _event_filter(flt: EventFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = ["1 = 1"]
    params: list[Any] = []
    if flt.employee_id is not None:
        clauses.append("events.employee_id = ?")
        params.append(flt.employee_id)
    if flt.outcomes:
        clauses.append(f"events.outcome IN ({', '.join('?' for _ in flt.outcomes)})")
        params.extend(flt.outcomes)
    if flt.since is not None:
        clauses.append("events.time >= ?")
        params.append(ts(flt.since))
    if flt.until is not None:
        clauses.append("events.time < ?")
        params.append(ts(flt.until))
    if flt.max_id is not None:
        clauses.append("events.id <= ?")
        params.append(flt.max_id)
    return " AND ".join(clauses), params


def _event_values(e: ScanEvent) -> tuple[Any, ...]:
    """A scan's values in the order of ``_INSERT_EVENTS``'s columns."""
    return (ts(e.time), e.card_id, e.employee_id, e.outcome.value, e.channel_id, e.channel_kind, e.user_agent,
            e.referrer, e.accept_language, e.visitor_key, int(e.is_bot), e.device, e.os, e.browser)


def _each_outcome(flt: EventFilter) -> list[EventFilter]:
    if len(flt.outcomes) < 2:
        return [flt]
    return [dataclasses.replace(flt, outcomes=(outcome,)) for outcome in flt.outcomes]


def _search_sql(conn: sqlite3.Connection, flt: EventFilter, before_id: int | None, after_id: int | None,
                limit: int, columns: str = "events.*, employees.email AS employee_email",
                offset: int = 0) -> tuple[str, list[Any]]:
    """The scan log's query: the filters, then the keyset bound written as the range's end on time (what the
    indexes on time, (employee_id, time) and (outcome, time) serve), the id breaking ties without an OR (which
    the planner would split). The bound replaces the filter's own end on that side: given both, SQLite may
    start from the filter's and walk every newer row before the page, page after page."""
    order = "DESC"
    bound, bound_params = "", []
    key = before_id if before_id is not None else after_id
    if key is not None:
        found = conn.execute("SELECT time FROM events WHERE id = ?", (key,)).fetchone()
        older = before_id is not None
        if found is None:  # that row is gone (purged): the ids still order it
            bound, bound_params = (" AND events.id < ?" if older else " AND events.id > ?"), [key]
        elif older:
            flt = dataclasses.replace(flt, until=None)  # implied: the key row matched it
            bound = " AND events.time <= ? AND NOT (events.time = ? AND events.id >= ?)"
            bound_params = [found[0], found[0], key]
        else:
            flt = dataclasses.replace(flt, since=None)
            bound = " AND events.time >= ? AND NOT (events.time = ? AND events.id <= ?)"
            bound_params = [found[0], found[0], key]
        order = "DESC" if older else "ASC"
    where, params = _event_filter(flt)
    sql = f"""SELECT {columns} FROM events
              LEFT JOIN employees ON employees.id = events.employee_id
              WHERE {where}{bound} ORDER BY events.time {order}, events.id {order} LIMIT ? OFFSET ?"""  # noqa: S608
    return sql, [*params, *bound_params, limit, offset]


def _csv_cells(formula_starts: Sequence[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The scan export's cells before the local time and after it, each a ``printf`` conversion and its
    arguments. A text cell is quoted (``%w`` doubles its quotes) and prefixed with ' when it starts with one of
    ``formula_starts``; the employee's email, NULL for a scan without one, is then an empty cell. One printf
    builds the line in one pass: SQL's ``||`` would copy the line so far at every cell."""
    starts = ", ".join(str(ord(c)) for c in formula_starts) or "NULL"  # code points: constants, not input

    def text(column: str) -> tuple[str, str]:  # the schema has these NOT NULL
        return '"%s%w"', f"iif(unicode({column}) IN ({starts}), '''', ''), {column}"

    email = ("%s%w%s", "CASE WHEN employees.email IS NULL THEN '' "
                       f"WHEN unicode(employees.email) IN ({starts}) THEN '\"''' ELSE '\"' END, "
                       "COALESCE(employees.email, ''), iif(employees.email IS NULL, '', '\"')")
    head = [("%d", "events.id"), ("%sZ", "substr(events.time, 1, 19)"), ("%s", "events.outcome"), email,
            ("%s", "events.channel_kind"), ("%s", "events.card_id"), text("events.user_agent"),
            text("events.referrer"), text("events.accept_language"), ("%s", "events.visitor_key")]
    tail = [("%d", "events.is_bot"), text("events.device"), text("events.os"), text("events.browser")]
    return head, tail


def _event_row(r: sqlite3.Row) -> EventRow:
    return EventRow(
        id=r["id"], time=parse_ts(r["time"]), outcome=Outcome(r["outcome"]), card_id=r["card_id"],
        employee_id=r["employee_id"], employee_email=r["employee_email"], channel_kind=r["channel_kind"],
        user_agent=r["user_agent"], referrer=r["referrer"], accept_language=r["accept_language"],
        visitor_key=r["visitor_key"], is_bot=bool(r["is_bot"]), device=r["device"], os=r["os"], browser=r["browser"],
    )


def _check_version(conn: sqlite3.Connection, expected: int) -> None:
    # Under the write lock no other connection can commit, so this is exact until the COMMIT.
    version = int(conn.execute("PRAGMA data_version").fetchone()[0])
    if version != expected:
        raise DataChanged(version)


def _commit_batch(conn: sqlite3.Connection, events: Sequence[ScanEvent], expect_version: int | None) -> None:
    """On the writer's thread: one transaction with the events and their totals."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if expect_version is not None:
            _check_version(conn, expect_version)
        _insert_and_count(conn, events)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("ROLLBACK")
        raise


def _insert_and_count(conn: sqlite3.Connection, events: Sequence[ScanEvent]) -> None:
    """Insert ``events`` and add them to ``daily_totals`` as ``totals_from_events`` would count them.

    Unique visitors are counted with ``daily_visitors``: a key is new for a day and scope only when its row
    is inserted, which ``RETURNING`` reports. Days are the company's local days.
    """
    for chunk in _chunks([_event_values(e) for e in events]):
        conn.execute(_INSERT_EVENTS + ", ".join([_EVENT_MARKS] * len(chunk)), [v for row in chunk for v in row])
    found = conn.execute("SELECT timezone FROM company WHERE id = 1").fetchone()
    zone = _zone(found[0] if found else DEFAULT_TIMEZONE)
    totals: dict[tuple[str, int, int], list[int]] = {}  # scans, bots, visitors, clicks, clickers, vcards
    seen: set[tuple[str, int, int, str, str]] = set()
    days: dict[int, str] = {}  # per UTC second (offsets change on whole seconds: one local day a second)
    for e in events:
        second = math.floor(e.time.timestamp())
        day = days.get(second)
        if day is None:
            day = days[second] = e.time.astimezone(zone).date().isoformat()
        scopes = [(0, 0)]
        if e.employee_id is not None:
            scopes.append((e.employee_id, 0))
            if e.card_id is not None:
                scopes.append((e.employee_id, e.card_id))
        outcome = e.outcome.value
        kind = "" if e.is_bot else "scan" if outcome in _SCAN_VALUES else "click" if outcome == "click" else ""
        for employee_id, card_id in scopes:
            t = totals.setdefault((day, employee_id, card_id), [0, 0, 0, 0, 0, 0])
            if e.is_bot:
                t[1] += 1
            elif kind == "scan":
                t[0] += 1
            elif kind == "click":
                t[3] += 1
            elif outcome == "vcard":
                t[5] += 1
            if kind:
                seen.add((day, employee_id, card_id, kind, e.visitor_key))
    for chunk in _chunks(sorted(seen)):
        for day, employee_id, card_id, kind in conn.execute(
                "INSERT INTO daily_visitors (day, employee_id, card_id, kind, visitor_key) VALUES "  # noqa: S608
                + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
                + " ON CONFLICT DO NOTHING RETURNING day, employee_id, card_id, kind",
                [v for row in chunk for v in row]).fetchall():
            totals[(day, employee_id, card_id)][2 if kind == "scan" else 4] += 1
    for chunk in _chunks([(*key, *counts) for key, counts in totals.items()]):
        conn.execute(
            _UPSERT_TOTALS.format(marks=", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))),
            [v for row in chunk for v in row])
    enqueue_scans(conn, events)  # the webhook outbox, in the same transaction (one lookup when nobody subscribes)
