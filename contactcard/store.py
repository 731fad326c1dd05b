"""The only place with SQL. Small typed functions, rows mapped to dataclasses.

Two paths to the database (customers come first, see DESIGN.md):
- the writer: one aiosqlite connection that commits the scan writer's batches and every other write. Writes
  that must be atomic run inside ``async with store.transaction():``, serialised with the batches.
- readers: a small bounded pool of read-only connections (WAL readers) used from worker threads, off the event
  loop, for every read outside a transaction (console, /me, CLI reports, exports, maintenance). A report,
  however slow, holds no lock the writer needs: a scan's commit never waits for it, and it never waits for one.
Reads inside a transaction use the writer's connection, so they see the transaction's own writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import fcntl
import functools
import hashlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiosqlite

from .models import (
    SCAN_OUTCOMES,
    AuditEvent,
    Busy,
    Card,
    Channel,
    ChannelKind,
    Company,
    Conflict,
    DayTotals,
    Employee,
    EmployeeStatus,
    NotFound,
    Outcome,
    ScanEvent,
    User,
    ValidationError,
)
from .schema import LATEST, MIGRATIONS

BUSY_SLICE_MS = 50  # the longest one statement waits for another connection's lock
PATIENCE = 5.0  # how long a transaction keeps trying to begin while another connection writes


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY  # BUSY and its extended codes


def ts(dt: datetime) -> str:
    """UTC, fixed width, so text order is time order."""
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _opt_ts(text: str | None) -> datetime | None:
    return None if text is None else parse_ts(text)


def _split(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.split("\n") if x)


@dataclass(frozen=True)
class CardRecord:
    """A card with the nonce its token is derived from; never leaves the service."""

    card: Card
    nonce: bytes


@dataclass(frozen=True)
class EventRow:
    id: int
    time: datetime
    outcome: Outcome
    card_id: int | None
    employee_id: int | None
    employee_email: str | None
    channel_kind: str | None
    user_agent: str
    referrer: str
    accept_language: str
    visitor_key: str
    is_bot: bool = False
    device: str = ""
    os: str = ""
    browser: str = ""


@dataclass(frozen=True)
class EventFilter:
    """Which events to read; every part optional, times are instants, [since, until)."""

    employee_id: int | None = None
    outcomes: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    max_id: int | None = None  # pins an export to the events stored when it began, whatever their time


@dataclass(frozen=True)
class UserRecord:
    """A user with the secrets that never leave the accounts service."""

    user: User
    password_hash: str | None
    disabled_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    user_id: int
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class InvitationRecord:
    user_id: int
    purpose: str  # "invite" | "reset"
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


_INSERT_EVENTS = """INSERT INTO events (time, card_id, employee_id, outcome, channel_id, channel_kind, user_agent,
    referrer, accept_language, visitor_key, is_bot, device, os, browser) VALUES """
_EVENT_MARKS = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
MAX_APPEND = 2000  # 14 parameters a row stays under SQLite's 32,766 bound parameters
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


SYNCHRONOUS = "FULL"  # every commit is on disk before the answer that depends on it is sent
T = TypeVar("T")
READERS = 3  # read-only connections: enough for a report, an export and a cache miss at once on 2 cores
BUSY_TIMEOUT_MS = 5000  # the readers' (a reader waiting blocks only its own worker thread)
# Set while the current task holds the writer's transaction: its reads must see its own writes.
_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("in_transaction", default=False)


class Readers:
    """A bounded pool of read-only connections, each used by one worker thread at a time.

    ``run(fn)`` hands ``fn`` an idle connection inside one read transaction (one snapshot for all its
    statements) on a worker thread. A caller that is cancelled stops waiting, but the connection goes back to
    the pool only when ``fn`` has finished with it.
    """

    def __init__(self, path: Path, size: int = READERS) -> None:
        self._path = path
        self._idle: list[sqlite3.Connection] = []
        self._free = asyncio.Semaphore(size)
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="db-reader")
        self._all: list[sqlite3.Connection] = []

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only=ON")
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        await self._free.acquire()
        conn = self._idle.pop() if self._idle else None
        loop = asyncio.get_running_loop()
        # The semaphore is released from the worker thread through the loop, never directly.
        future = loop.run_in_executor(self._threads, self._call_threadsafe, loop, conn, fn)
        return await asyncio.shield(future)

    def _call_threadsafe(self, loop: asyncio.AbstractEventLoop, conn: sqlite3.Connection | None,
                         fn: Callable[[sqlite3.Connection], T]) -> T:
        if conn is None:
            conn = self._connect()
            self._all.append(conn)
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")  # a read transaction: this only ends the snapshot
        finally:
            loop.call_soon_threadsafe(self._release, conn)

    def _release(self, conn: sqlite3.Connection) -> None:
        self._idle.append(conn)
        self._free.release()

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()


class Store:
    """The database: every SQL statement of the program, as small typed methods returning ``models`` values.

    One writer connection, serialised by ``transaction()`` (shared with the scan writer's batches), and a pool
    of read-only connections for reads outside a transaction. ``app`` and ``cli.base`` open it and hand it to
    ``Service``, ``Accounts`` and ``ScanWriter``, which alone use it (with ``reports``/``stats``, called by the
    service); handlers never touch it.
    """

    def __init__(self, conn: aiosqlite.Connection, readers: Readers, in_use: DatabaseLock | None = None) -> None:
        self._conn = conn
        self._readers = readers
        self._write_lock = asyncio.Lock()
        self._in_use = in_use

    @classmethod
    async def open(cls, path: Path, *, migrate_to: int = LATEST) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        in_use = DatabaseLock(path)
        in_use.acquire_shared()  # held while open, so that ``restore`` can tell the database is in use
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            in_use.release()
            raise
        conn.row_factory = sqlite3.Row
        store = cls(conn, Readers(path), in_use)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
            await conn.execute("PRAGMA foreign_keys=ON")
            # Short: while SQLite waits for a lock held by another connection, this connection's thread is
            # blocked, and the scan path's data_version check would queue behind it. Callers retry instead.
            await conn.execute(f"PRAGMA busy_timeout={BUSY_SLICE_MS}")
            await store.migrate(migrate_to)
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        try:
            await asyncio.to_thread(self._readers.close)  # waits for reads still running in worker threads
        finally:
            try:
                await self._conn.close()
            finally:
                if self._in_use is not None:
                    self._in_use.release()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on a read-only connection in a worker thread, inside one snapshot; see ``Readers``."""
        return await self._readers.run(fn)

    # --- schema -------------------------------------------------------------------------------

    async def schema_version(self) -> int:
        return int(await self._scalar("PRAGMA user_version"))

    async def migrate(self, target: int = LATEST) -> list[int]:
        """Apply pending migrations up to ``target``, each in its own transaction; return those applied."""
        applied = []
        current = await self.schema_version()
        if current > LATEST:
            raise Conflict(f"database schema version {current} is newer than this program ({LATEST}); "
                           "upgrade contactcard")
        for version in sorted(v for v in MIGRATIONS if current < v <= target):
            async with self.transaction():
                for statement in _statements(MIGRATIONS[version]):
                    await self._conn.execute(statement)
                await self._conn.execute(f"PRAGMA user_version = {int(version)}")
            applied.append(version)
        return applied

    @asynccontextmanager
    async def transaction(self, *, patience: float = PATIENCE) -> AsyncIterator[None]:
        """A write transaction; Busy if another connection holds the lock for longer than ``patience`` seconds."""
        async with self._write_lock:
            inside = _in_transaction.set(True)
            try:
                await self._begin(patience)
                yield
                await self._conn.execute("COMMIT")
            except BaseException:
                # Whatever ended it (an error, a failed COMMIT, a cancellation while a statement was still
                # queued for the database thread), roll back before the lock is released, so the shared
                # connection is never left inside a transaction. That thread runs statements in order, so the
                # ROLLBACK follows anything already sent; "no transaction is active" means nothing was begun.
                # The original exception always goes on: a cancellation must never turn into another error.
                with contextlib.suppress(sqlite3.OperationalError):
                    await self._conn.execute("ROLLBACK")
                raise
            finally:
                _in_transaction.reset(inside)

    async def writable(self, patience: float) -> bool:
        """Take the write lock and let it go, changing nothing: False on a read-only or failing database, or when
        another connection holds the lock for longer than ``patience`` seconds."""
        try:
            async with self.transaction(patience=patience):
                pass
        except (sqlite3.Error, Busy):
            return False
        return True

    async def _begin(self, patience: float) -> None:
        # Retried in short slices rather than one long busy wait, so other statements (the data_version
        # check of every scan) run in between on this connection's thread.
        loop = asyncio.get_running_loop()
        give_up = loop.time() + patience
        while True:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if loop.time() >= give_up:
                    raise Busy("the database is busy (locked by another program); try again") from None
            await asyncio.sleep(0.005)

    async def data_version(self) -> int:
        """Changes whenever another connection (the CLI, another worker) commits.

        Read on the writer's connection: the counter is per connection, and this one's own commits (scans,
        the console's changes) must not count as another's.
        """
        rows = await self._conn.execute_fetchall("PRAGMA data_version")
        return int(next(iter(rows))[0])

    async def integrity_check(self) -> str:
        return str(await self._scalar("PRAGMA integrity_check"))

    # --- the secret's check value (see keycheck.py) -------------------------------------------

    async def secret_check(self) -> bytes | None:
        value = await self._scalar("SELECT value FROM secret_check WHERE id = 1")
        return None if value is None else bytes(value)

    async def set_secret_check(self, value: bytes) -> bytes:
        """Store the check value unless one is there already; return the one stored."""
        async with self.transaction():
            await self._exec("INSERT OR IGNORE INTO secret_check (id, value) VALUES (1, ?)", (value,))
        stored = await self.secret_check()
        assert stored is not None
        return stored

    async def sample_card_key(self) -> tuple[bytes, bytes] | None:
        """The newest card's (nonce, token digest): enough to tell whether a secret is the one it was keyed with."""
        row = await self._row("SELECT nonce, token_digest FROM cards ORDER BY id DESC LIMIT 1")
        return None if row is None else (bytes(row["nonce"]), bytes(row["token_digest"]))

    # --- helpers ------------------------------------------------------------------------------

    async def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = await self._rows(sql, params)
        return rows[0][0] if rows else None

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """A read (a write here fails: readers are query-only)."""
        if _in_transaction.get():  # one round trip to the writer's thread (execute + fetchall + close: three)
            return list(await self._conn.execute_fetchall(sql, params))
        return await self._readers.run(lambda conn: conn.execute(sql, params).fetchall())

    async def _row(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    async def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write; returns lastrowid. Callers hold a transaction."""
        try:
            cur = await self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise Conflict(_integrity_message(exc)) from None
        return int(cur.lastrowid or 0)

    # --- company ------------------------------------------------------------------------------

    async def company(self) -> Company | None:
        row = await self._row("SELECT * FROM company WHERE id = 1")
        if row is None:
            return None
        channels = await self.channels(None)
        return Company(
            name=row["name"],
            name_en=row["name_en"],
            logo_sha=row["logo_sha"],
            brand_color=row["brand_color"],
            business_hours=row["business_hours"],
            business_hours_en=row["business_hours_en"],
            timezone=row["timezone"],
            default_card_days=row["default_card_days"],
            retention_days=row["retention_days"],
            allow_email_domains=_split(row["allow_email_domains"]),
            allow_phone_prefixes=_split(row["allow_phone_prefixes"]),
            allow_line_ids=_split(row["allow_line_ids"]),
            allow_line_works_domains=_split(row["allow_line_works_domains"]),
            allow_web_hosts=_split(row["allow_web_hosts"]),
            channels=tuple(channels),
        )

    async def save_company(self, company: Company) -> None:
        await self._exec(
            """INSERT INTO company (id, name, name_en, logo_sha, brand_color, business_hours, business_hours_en,
                   timezone, default_card_days, retention_days, allow_email_domains, allow_phone_prefixes,
                   allow_line_ids, allow_line_works_domains, allow_web_hosts)
               VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET name=excluded.name, name_en=excluded.name_en,
                   logo_sha=excluded.logo_sha, brand_color=excluded.brand_color,
                   business_hours=excluded.business_hours, business_hours_en=excluded.business_hours_en,
                   timezone=excluded.timezone, default_card_days=excluded.default_card_days,
                   retention_days=excluded.retention_days, allow_email_domains=excluded.allow_email_domains,
                   allow_phone_prefixes=excluded.allow_phone_prefixes, allow_line_ids=excluded.allow_line_ids,
                   allow_line_works_domains=excluded.allow_line_works_domains,
                   allow_web_hosts=excluded.allow_web_hosts""",
            (
                company.name, company.name_en, company.logo_sha, company.brand_color, company.business_hours,
                company.business_hours_en, company.timezone, company.default_card_days, company.retention_days,
                "\n".join(company.allow_email_domains), "\n".join(company.allow_phone_prefixes),
                "\n".join(company.allow_line_ids), "\n".join(company.allow_line_works_domains),
                "\n".join(company.allow_web_hosts),
            ),
        )

    # --- media --------------------------------------------------------------------------------

    async def put_media(self, data: bytes, content_type: str) -> str:
        sha = hashlib.sha256(data).hexdigest()
        await self._exec("INSERT OR IGNORE INTO media (sha, content_type, data) VALUES (?, ?, ?)",
                         (sha, content_type, data))
        return sha

    async def media(self, sha: str) -> tuple[bytes, str] | None:
        row = await self._row("SELECT data, content_type FROM media WHERE sha = ?", (sha,))
        return None if row is None else (bytes(row["data"]), str(row["content_type"]))

    # --- employees ----------------------------------------------------------------------------

    async def add_employee(self, employee: Employee) -> int:
        return await self._exec(
            """INSERT INTO employees (email, family_name, given_name, family_kana, given_kana, latin_name,
                   title, department, photo_sha, status, successor_id, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (employee.email, employee.family_name, employee.given_name, employee.family_kana,
             employee.given_kana, employee.latin_name, employee.title, employee.department,
             employee.photo_sha, employee.status.value, employee.successor_id, ts(employee.created_at)),
        )

    async def update_employee(self, employee: Employee) -> None:
        await self._exec(
            """UPDATE employees SET email=?, family_name=?, given_name=?, family_kana=?, given_kana=?,
                   latin_name=?, title=?, department=?, photo_sha=?, status=?, successor_id=? WHERE id=?""",
            (employee.email, employee.family_name, employee.given_name, employee.family_kana,
             employee.given_kana, employee.latin_name, employee.title, employee.department,
             employee.photo_sha, employee.status.value, employee.successor_id, employee.id),
        )

    async def employee(self, employee_id: int) -> Employee | None:
        row = await self._row("SELECT * FROM employees WHERE id = ?", (employee_id,))
        return None if row is None else _employee(row)

    async def employee_by_email(self, email: str) -> Employee | None:
        row = await self._row("SELECT * FROM employees WHERE email = ?", (email.strip(),))
        return None if row is None else _employee(row)

    async def employees(self) -> list[Employee]:
        return [_employee(r) for r in await self._rows("SELECT * FROM employees ORDER BY family_kana, family_name, id")]

    # --- channels -----------------------------------------------------------------------------

    async def channels(self, employee_id: int | None) -> list[Channel]:
        rows = await self._rows(
            "SELECT * FROM channels WHERE employee_id IS ? ORDER BY position, id", (employee_id,)
        )
        return [_channel(r) for r in rows]

    async def channel(self, channel_id: int) -> Channel | None:
        row = await self._row("SELECT * FROM channels WHERE id = ?", (channel_id,))
        return None if row is None else _channel(row)

    async def add_channel(self, employee_id: int | None, kind: ChannelKind, target: str, label: str) -> int:
        position = await self._scalar(
            "SELECT COALESCE(MAX(position), 0) + 1 FROM channels WHERE employee_id IS ?", (employee_id,)
        )
        return await self._exec(
            "INSERT INTO channels (employee_id, kind, target, label, position) VALUES (?, ?, ?, ?, ?)",
            (employee_id, kind.value, target, label, position),
        )

    async def remove_channel(self, channel_id: int) -> None:
        await self._exec("DELETE FROM channels WHERE id = ?", (channel_id,))

    async def set_channel_positions(self, ordered_ids: Iterable[int]) -> None:
        for position, channel_id in enumerate(ordered_ids, start=1):
            await self._exec("UPDATE channels SET position = ? WHERE id = ?", (position, channel_id))

    # --- cards --------------------------------------------------------------------------------

    async def insert_card(self, employee_id: int, label: str, nonce: bytes, token_digest: bytes,
                          created_at: datetime, expires_at: datetime) -> int:
        generation = await self._scalar(
            "SELECT COALESCE(MAX(generation), 0) + 1 FROM cards WHERE employee_id = ?", (employee_id,)
        )
        return await self._exec(
            """INSERT INTO cards (employee_id, generation, label, nonce, token_digest, created_at, expires_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (employee_id, generation, label, nonce, token_digest, ts(created_at), ts(expires_at)),
        )

    async def card(self, card_id: int) -> CardRecord | None:
        row = await self._row("SELECT * FROM cards WHERE id = ?", (card_id,))
        return None if row is None else _card(row)

    async def card_by_digest(self, token_digest: bytes) -> CardRecord | None:
        row = await self._row("SELECT * FROM cards WHERE token_digest = ?", (token_digest,))
        return None if row is None else _card(row)

    async def open_card(self, employee_id: int) -> CardRecord | None:
        """The employee's unrevoked card (possibly expired)."""
        row = await self._row("SELECT * FROM cards WHERE employee_id = ? AND revoked_at IS NULL", (employee_id,))
        return None if row is None else _card(row)

    async def cards(self, employee_id: int | None = None) -> list[Card]:
        rows = await self._rows(
            "SELECT * FROM cards WHERE ? IS NULL OR employee_id = ? ORDER BY employee_id, generation",
            (employee_id, employee_id),
        )
        return [_card(r).card for r in rows]

    async def revoke_card(self, card_id: int, at: datetime, reason: str) -> None:
        await self._exec("UPDATE cards SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
                         (ts(at), reason, card_id))

    async def set_card_expiry(self, card_id: int, expires_at: datetime) -> None:
        await self._exec("UPDATE cards SET expires_at = ? WHERE id = ?", (ts(expires_at), card_id))

    # --- events -------------------------------------------------------------------------------

    async def insert_events(self, events: Sequence[ScanEvent]) -> None:
        """Append events and add them to the daily totals; the caller holds the transaction."""
        if events:
            await self._on_writer_thread(_insert_and_count, events)

    async def append_events(self, events: Sequence[ScanEvent]) -> None:
        """Commit a batch of events and their share of the daily totals in one transaction, in one round trip
        to the database thread (BEGIN, INSERTs and COMMIT as separate calls would be five). Serialised with
        ``transaction()``."""
        if not events:
            return
        async with self._write_lock:
            try:
                await self._on_writer_thread(_commit_batch, events)
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):  # nothing was written: the caller may try again
                    raise Busy("the database is locked by another connection") from None
                raise

    async def _on_writer_thread(self, fn: Callable[..., T], *args: Any) -> T:
        # aiosqlite runs queued functions on its connection's thread in order; several statements then cost
        # one hop. The private call is confined to this method.
        result: T = await self._conn._execute(fn, self._conn._conn, *args)  # type: ignore[no-untyped-call]  # noqa: SLF001
        return result

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
        async with self._write_lock:  # one statement: atomic on its own, the lock held only while it runs
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
        statement, atomic alone, so the lock is never held across a turn of the event loop.
        """
        if not await self._scalar("SELECT EXISTS (SELECT 1 FROM events WHERE time < ?)", (ts(cutoff),)):
            return 0
        async with self._write_lock:
            cur = await self._conn.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ? ORDER BY time LIMIT ?)",
                (ts(cutoff), limit),
            )
            return int(cur.rowcount)


    # --- accounts: users, sessions, invitations, sign-in failures, audit (migration 2) ---------

    async def add_user(self, email: str, role: str, employee_id: int | None, password_hash: str | None,
                       created_at: datetime) -> int:
        return await self._exec(
            "INSERT INTO users (email, role, employee_id, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            (email, role, employee_id, password_hash, ts(created_at)),
        )

    async def user(self, user_id: int) -> UserRecord | None:
        row = await self._row("SELECT * FROM users WHERE id = ?", (user_id,))
        return None if row is None else _user(row)

    async def user_by_email(self, email: str) -> UserRecord | None:
        row = await self._row("SELECT * FROM users WHERE email = ?", (email.strip(),))
        return None if row is None else _user(row)

    async def user_by_employee(self, employee_id: int) -> UserRecord | None:
        row = await self._row("SELECT * FROM users WHERE employee_id = ?", (employee_id,))
        return None if row is None else _user(row)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._exec("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    async def add_session(self, id_hash: bytes, user_id: int, at: datetime) -> None:
        await self._exec(
            "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
            (id_hash, user_id, ts(at), ts(at)),
        )

    async def session(self, id_hash: bytes) -> SessionRecord | None:
        row = await self._row("SELECT * FROM sessions WHERE id_hash = ?", (id_hash,))
        if row is None:
            return None
        return SessionRecord(user_id=row["user_id"],
                             created_at=parse_ts(row["created_at"]), last_seen_at=parse_ts(row["last_seen_at"]))

    async def touch_session(self, id_hash: bytes, at: datetime) -> None:
        await self._exec("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", (ts(at), id_hash))

    async def delete_session(self, id_hash: bytes) -> None:
        await self._exec("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))

    async def delete_user_sessions(self, user_id: int) -> None:
        await self._exec("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    async def count_sessions(self, user_id: int | None = None) -> int:
        return int(await self._scalar("SELECT COUNT(*) FROM sessions WHERE ? IS NULL OR user_id = ?",
                                      (user_id, user_id)))

    async def delete_stale_sessions(self, idle_before: datetime, created_before: datetime) -> None:
        await self._exec("DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?",
                         (ts(idle_before), ts(created_before)))

    async def add_invitation(self, token_hash: bytes, user_id: int, purpose: str, created_at: datetime,
                             expires_at: datetime) -> None:
        await self._exec(
            """INSERT INTO invitations (token_hash, user_id, purpose, created_at, expires_at)
               VALUES (?, ?, ?, ?, ?)""",
            (token_hash, user_id, purpose, ts(created_at), ts(expires_at)),
        )

    async def invitation(self, token_hash: bytes) -> InvitationRecord | None:
        row = await self._row("SELECT * FROM invitations WHERE token_hash = ?", (token_hash,))
        if row is None:
            return None
        return InvitationRecord(user_id=row["user_id"], purpose=row["purpose"],
                                created_at=parse_ts(row["created_at"]), expires_at=parse_ts(row["expires_at"]),
                                used_at=_opt_ts(row["used_at"]))

    async def use_invitation(self, token_hash: bytes, at: datetime) -> bool:
        """Mark the link used; False when it already was (a replay loses the race here)."""
        cur = await self._conn.execute(
            "UPDATE invitations SET used_at = ? WHERE token_hash = ? AND used_at IS NULL", (ts(at), token_hash)
        )
        return cur.rowcount == 1

    async def retire_invitations(self, user_id: int, at: datetime) -> None:
        """Older unused links of this user stop working when a new one is issued or one is used."""
        await self._exec("UPDATE invitations SET used_at = ? WHERE user_id = ? AND used_at IS NULL",
                         (ts(at), user_id))

    async def add_login_failure(self, key: str, at: datetime) -> None:
        await self._exec("INSERT INTO login_failures (key, time) VALUES (?, ?)", (key, ts(at)))

    async def login_failures(self, key: str, since: datetime) -> list[datetime]:
        rows = await self._rows("SELECT time FROM login_failures WHERE key = ? AND time >= ? ORDER BY time",
                                (key, ts(since)))
        return [parse_ts(r["time"]) for r in rows]

    async def clamp_login_failures(self, key: str, now: datetime) -> None:
        """Failures dated after ``now`` (the clock stepped back) are moved to ``now``."""
        await self._exec("UPDATE login_failures SET time = ? WHERE key = ? AND time > ?", (ts(now), key, ts(now)))

    async def clear_login_failures(self, key: str) -> None:
        await self._exec("DELETE FROM login_failures WHERE key = ?", (key,))

    async def purge_login_failures(self, before: datetime) -> None:
        await self._exec("DELETE FROM login_failures WHERE time < ?", (ts(before),))

    async def count_sign_in_throttled(self, key: str, until: datetime) -> int:
        """Count one refused attempt against a throttle period; returns the period's count so far."""
        rows = await self._conn.execute_fetchall(  # a write: the writer's connection, never a reader
            """INSERT INTO sign_in_throttles (key, until, refused) VALUES (?, ?, 1)
               ON CONFLICT (key, until) DO UPDATE SET refused = refused + 1 RETURNING refused""",
            (key, ts(until)),
        )
        return int(next(iter(rows))[0])

    async def purge_sign_in_throttles(self, before: datetime) -> None:
        await self._exec("DELETE FROM sign_in_throttles WHERE until < ?", (ts(before),))

    async def add_audit(self, at: datetime, actor: str, action: str, target: str, before: str | None,
                        after: str | None) -> int:
        return await self._exec(
            "INSERT INTO audit (time, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)",
            (ts(at), actor, action, target, before, after),
        )

    async def audit_events(self, *, actor: str | None = None, action: str | None = None,
                           since: datetime | None = None, until: datetime | None = None,
                           before_id: int | None = None, limit: int = 100, offset: int = 0) -> list[AuditEvent]:
        """Newest first; every filter optional; ``before_id`` pages by keyset as ``events`` does."""
        rows = await self._rows(
            """SELECT * FROM audit WHERE (? IS NULL OR actor = ?) AND (? IS NULL OR action = ?)
                   AND (? IS NULL OR time >= ?) AND (? IS NULL OR time < ?) AND (? IS NULL OR id < ?)
               ORDER BY id DESC LIMIT ? OFFSET ?""",
            (actor, actor, action, action, *(2 * [None if since is None else ts(since)]),
             *(2 * [None if until is None else ts(until)]), before_id, before_id, limit, offset),
        )
        return [AuditEvent(id=r["id"], time=parse_ts(r["time"]), actor=r["actor"], action=r["action"],
                           target=r["target"], before=r["before"], after=r["after"]) for r in rows]

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

    async def export_csv(self, flt: EventFilter | None = None, *, before_id: int | None = None, limit: int = 5000,
                         formula_starts: Sequence[str] = ()) -> list[tuple[int, str, str]]:
        """A keyset page of ``events`` for a CSV export: (id, time as stored, the row's cells as CSV text in
        ``csvexport.EVENT_HEADER`` order). SQLite builds the cells, because Python's csv module alone runs at
        less than half the rate SQLite reads the rows: times in UTC ISO 8601, every text cell quoted, and a
        text cell starting with one of ``formula_starts`` prefixed with ' (see ``csvexport.neutralise``)."""
        starts = ", ".join(f"char({ord(c)})" for c in formula_starts) or "NULL"  # constants, not input

        def text(column: str) -> str:
            neutral = f"CASE WHEN substr({column}, 1, 1) IN ({starts}) THEN '''' || {column} ELSE {column} END"
            return f"""CASE WHEN {column} IS NULL THEN '' ELSE '"' || replace({neutral}, '"', '""') || '"' END"""

        cells = " || ',' || ".join((
            "events.id", "substr(events.time, 1, 19) || 'Z'", "events.outcome", text("employees.email"),
            "COALESCE(events.channel_kind, '')", "COALESCE(events.card_id, '')", text("events.user_agent"),
            text("events.referrer"), text("events.accept_language"), "events.visitor_key"))

        def page(conn: sqlite3.Connection) -> list[tuple[int, str, str]]:
            sql, params = _search_sql(conn, flt or EventFilter(), before_id, None, limit,
                                      columns=f"events.id, events.time, {cells}")
            cursor = conn.cursor()
            cursor.row_factory = None
            return cursor.execute(sql, params).fetchall()

        return await self.read(page)

    async def events_plan(self, flt: EventFilter | None = None, *, before_id: int | None = None) -> list[str]:
        """SQLite's plan for that ``events`` query (EXPLAIN QUERY PLAN), to check that an index serves it."""
        def plan(conn: sqlite3.Connection) -> list[str]:
            sql, params = _search_sql(conn, flt or EventFilter(), before_id, None, 50)
            return [str(r["detail"]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]

        return await self.read(plan)

    async def count_audit_events(self, *, actor: str | None = None) -> int:
        return int(await self._scalar("SELECT COUNT(*) FROM audit WHERE ? IS NULL OR actor = ?", (actor, actor)))

    async def audit_actors(self) -> list[str]:
        return [r["actor"] for r in await self._rows("SELECT DISTINCT actor FROM audit ORDER BY actor")]


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


def _commit_batch(conn: sqlite3.Connection, events: Sequence[ScanEvent]) -> None:
    """On the writer's thread: one transaction with the events and their totals."""
    conn.execute("BEGIN IMMEDIATE")
    try:
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
    for e in events:
        day = e.time.astimezone(zone).date().isoformat()
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


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


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
                limit: int, columns: str = "events.*, employees.email AS employee_email") -> tuple[str, list[Any]]:
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
              WHERE {where}{bound} ORDER BY events.time {order}, events.id {order} LIMIT ?"""  # noqa: S608
    return sql, [*params, *bound_params, limit]


def _event_row(r: sqlite3.Row) -> EventRow:
    return EventRow(
        id=r["id"], time=parse_ts(r["time"]), outcome=Outcome(r["outcome"]), card_id=r["card_id"],
        employee_id=r["employee_id"], employee_email=r["employee_email"], channel_kind=r["channel_kind"],
        user_agent=r["user_agent"], referrer=r["referrer"], accept_language=r["accept_language"],
        visitor_key=r["visitor_key"], is_bot=bool(r["is_bot"]), device=r["device"], os=r["os"], browser=r["browser"],
    )

def _statements(script: str) -> list[str]:
    """Split a migration script on statement ends; sqlite3.complete_statement keeps triggers whole."""
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip() and not buf.strip().startswith("--"):
        statements.append(buf.strip())
    return statements


def _integrity_message(exc: sqlite3.IntegrityError) -> str:
    text = str(exc)
    if "employees.email" in text:
        return "an employee with that email already exists"
    if "one_open_card" in text or "cards.employee_id" in text:
        return "the employee already has a live card; rotate or revoke it first"
    if "FOREIGN KEY" in text:
        return "that refers to something that does not exist"
    return "that would conflict with existing data"


def _employee(r: sqlite3.Row) -> Employee:
    return Employee(
        id=r["id"], email=r["email"], family_name=r["family_name"], given_name=r["given_name"],
        family_kana=r["family_kana"], given_kana=r["given_kana"], latin_name=r["latin_name"], title=r["title"],
        department=r["department"], photo_sha=r["photo_sha"], status=EmployeeStatus(r["status"]),
        successor_id=r["successor_id"], created_at=parse_ts(r["created_at"]),
    )


def _channel(r: sqlite3.Row) -> Channel:
    return Channel(id=r["id"], kind=ChannelKind(r["kind"]), target=r["target"], label=r["label"],
                   position=r["position"], employee_id=r["employee_id"])


def _card(r: sqlite3.Row) -> CardRecord:
    card = Card(
        id=r["id"], employee_id=r["employee_id"], generation=r["generation"], label=r["label"],
        created_at=parse_ts(r["created_at"]), expires_at=parse_ts(r["expires_at"]),
        revoked_at=_opt_ts(r["revoked_at"]), revoked_reason=r["revoked_reason"],
    )
    return CardRecord(card=card, nonce=bytes(r["nonce"]))


def _user(r: sqlite3.Row) -> UserRecord:
    return UserRecord(
        user=User(id=r["id"], email=r["email"], role=r["role"], employee_id=r["employee_id"]),
        password_hash=r["password_hash"], disabled_at=_opt_ts(r["disabled_at"]), created_at=parse_ts(r["created_at"]),
    )


# --- whole database files: the in-use lock, backup, restore, check ------------------------------------
# Plain sqlite3, synchronous: the CLI runs these in its own process, never on the server's event loop.


class DatabaseLock:
    """``<db>.lock``, locked shared by every process that has the database open (the server, each command) and
    exclusively by ``restore``. flock locks belong to the open file, so a crashed process never leaves one held."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def _lock(self, mode: int) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire_shared(self) -> None:
        if not self._lock(fcntl.LOCK_SH):
            raise Conflict(f"the database {self.db_path} is being restored; start again when that "
                           "has finished")

    def acquire_exclusive(self) -> None:
        if not self._lock(fcntl.LOCK_EX):
            raise Conflict(f"the database {self.db_path} is in use (a running server or another "
                           "contactcard command); stop it first, e.g. systemctl stop contactcard")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases its lock
            self._fd = None


@dataclass(frozen=True)
class DatabaseReport:
    """What ``check``, ``backup`` and ``restore`` read from a database file, all in one read transaction."""

    path: Path
    integrity: str  # "ok", or SQLite's first findings
    schema_version: int
    page_size: int
    pages: int
    free_pages: int
    journal_mode: str
    synchronous: str  # as every contactcard connection sets it
    tables: dict[str, int]
    secret_check: bytes | None
    sample_card: tuple[bytes, bytes] | None  # (nonce, token digest) of the newest card

    @property
    def size(self) -> int:
        return self.page_size * self.pages


_SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _connect_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise NotFound(f"no database at {path}")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)


def inspect_database(path: Path) -> DatabaseReport:
    """Read a database file without changing it (read-only: no migration, works while the server writes)."""
    conn = _connect_read_only(path)
    try:
        return _inspect(conn, path, integrity=True)
    finally:
        conn.close()


def _inspect(conn: sqlite3.Connection, path: Path, *, integrity: bool) -> DatabaseReport:
    def pragma(name: str) -> Any:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]

    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    conn.execute("BEGIN")  # one snapshot for every figure
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        if "cards" not in names:
            raise ValidationError(f"{path} is not a contactcard database")
        tables = {name: int(conn.execute(f'SELECT COUNT(*) FROM "{name.replace(chr(34), chr(34) * 2)}"'  # noqa: S608 (a name SQLite listed, quoted)
                                         ).fetchone()[0]) for name in names}
        findings = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")] if integrity else ["not checked"]
        check = (conn.execute("SELECT value FROM secret_check WHERE id = 1").fetchone()
                 if "secret_check" in names else None)
        card = conn.execute("SELECT nonce, token_digest FROM cards ORDER BY id DESC LIMIT 1").fetchone()
        return DatabaseReport(
            path=path, integrity="; ".join(findings), schema_version=int(pragma("user_version")),
            page_size=int(pragma("page_size")), pages=int(pragma("page_count")),
            free_pages=int(pragma("freelist_count")), journal_mode=str(pragma("journal_mode")),
            synchronous=_SYNCHRONOUS_NAMES.get(int(pragma("synchronous")), "?"),
            tables=tables, secret_check=None if check is None else bytes(check[0]),
            sample_card=None if card is None else (bytes(card[0]), bytes(card[1])),
        )
    finally:
        conn.execute("ROLLBACK")


def _copy_database(source: Path, dest: Path, journal_mode: str) -> DatabaseReport:
    """Copy ``source`` into a new file ``dest`` (owner-only: it holds password hashes and sessions) with SQLite's
    online backup API in one step: one read transaction, so the copy is one consistent snapshot while the server
    goes on committing (in WAL mode a reader never blocks the writer). Returns the copy's report."""
    os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        src = _connect_read_only(source)
        try:
            dst = sqlite3.connect(dest, isolation_level=None)
            try:
                src.backup(dst)  # pages=-1: everything in one step
                dst.execute(f"PRAGMA journal_mode={journal_mode}")
                report = _inspect(dst, dest, integrity=False)
            finally:
                dst.close()
        finally:
            src.close()
        _fsync(dest)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return report


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_database(source: Path, dest: Path) -> DatabaseReport:
    """A consistent copy of the live database at ``dest`` (refused if it exists); the copy's report."""
    if dest.exists():
        raise Conflict(f"{dest} already exists; choose another file name")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    # a backup is one self-contained file (rollback journal mode, no -wal beside it); restore makes it WAL again
    report = _copy_database(source, partial, "DELETE")
    try:
        os.link(partial, dest)  # never replaces a file that appeared meanwhile
    finally:
        partial.unlink(missing_ok=True)
    _fsync(dest.parent)
    return dataclasses.replace(report, path=dest)


def restore_database(backup: DatabaseReport, target: Path, stamp: str) -> Path | None:
    """Replace ``target`` with the checked backup, refused while any process has it open. The replaced file
    (with its WAL folded in) is kept as ``<target>.replaced-<stamp>``, which is returned (None if there was none)."""
    in_use = DatabaseLock(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    in_use.acquire_exclusive()
    try:
        incoming = target.with_name(target.name + ".restoring")
        incoming.unlink(missing_ok=True)
        _copy_database(backup.path, incoming, "WAL")
        aside = None
        if target.exists():
            conn = sqlite3.connect(target, isolation_level=None)
            try:  # nobody else has it open: fold the WAL into the file, so the copy kept aside is complete
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.DatabaseError:
                pass  # a broken database (the usual reason to restore) is kept aside as it is, WAL and all
            finally:
                conn.close()
            aside = target.with_name(f"{target.name}.replaced-{stamp}")
            os.replace(target, aside)
            for suffix in ("-wal", "-shm"):  # never leave the old WAL next to the new file
                leftover = target.with_name(target.name + suffix)
                if leftover.exists():
                    os.replace(leftover, aside.with_name(aside.name + suffix))
        os.replace(incoming, target)
        _fsync(target.parent)
        return aside
    finally:
        in_use.release()
