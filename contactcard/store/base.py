"""The database connection: the writer, its transaction, the read-only pool, migrations, helpers.

Why two paths (the writer and the read-only pool) is explained in the package docstring (``store/__init__``)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import aiosqlite

from ..models import (
    Busy,
    Conflict,
)
from ..schema import LATEST, MIGRATIONS
from .files import SYNCHRONOUS, DatabaseLock

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


class StoreBase:
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
        # Transactions ended through ``transaction`` (every write but the scan writer's plain batches of events):
        # a cache of anything else read from the database is valid while this has not moved.
        self.commits = 0
        self._in_use = in_use

    @classmethod
    async def open(cls, path: Path, *, migrate_to: int = LATEST) -> Self:
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
        """Apply pending migrations up to ``target``, each in its own transaction; return those applied.

        Two programs may start on one database at once (two servers, a server and ``migrate``): each migration
        checks the version again inside its transaction, so one applied meanwhile by the other is skipped."""
        applied = []
        current = await self.schema_version()
        if current > LATEST:
            raise Conflict("database schema version %(found)s is newer than this program (%(known)s); "
                           "upgrade contactcard", found=current, known=LATEST)
        for version in sorted(v for v in MIGRATIONS if current < v <= target):
            async with self.transaction():
                if await self.schema_version() >= version:
                    continue
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
                self.commits += 1  # rolled back too: a needless re-read is cheap, a missed commit is not

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

    async def _on_writer_thread(self, fn: Callable[..., T], *args: Any) -> T:
        # aiosqlite runs queued functions on its connection's thread in order; several statements then cost
        # one hop. The private call is confined to this method.
        result: T = await self._conn._execute(fn, self._conn._conn, *args)  # type: ignore[no-untyped-call]  # noqa: SLF001
        return result

    async def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write; returns lastrowid. Callers hold a transaction."""
        try:
            cur = await self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise _integrity_conflict(exc) from None
        return int(cur.lastrowid or 0)



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


def _integrity_conflict(exc: sqlite3.IntegrityError) -> Conflict:
    """What a broken constraint means to the person who caused it (SQLite's own text names tables)."""
    text = str(exc)
    if "api_tokens.name" in text:
        return Conflict("an API token with that name exists (names are never reused)")
    if "employees.email" in text:
        return Conflict("an employee with that email already exists")
    if "one_open_card" in text or "cards.employee_id" in text:
        return Conflict("the employee already has a live card; rotate or revoke it first")
    if "FOREIGN KEY" in text:
        return Conflict("that refers to something that does not exist")
    return Conflict("that would conflict with existing data")

