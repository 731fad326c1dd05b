"""Customers come first on the database: reports read on their own connections and never hold a scan up."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from contactcard.models import Outcome, ScanEvent
from contactcard.scans import ScanWriter
from contactcard.store import Store

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)


def test_a_report_holding_its_read_transaction_open_does_not_hold_up_a_scan(tmp_path: Path) -> None:
    """The report is stopped mid-read (inside its snapshot) on a reader thread; the scan commits meanwhile."""

    async def scenario() -> None:
        store = await Store.open(tmp_path / "r.sqlite3")
        writer = ScanWriter(store)
        writer.start()
        inside, release = threading.Event(), threading.Event()

        def slow_report(conn: sqlite3.Connection) -> tuple[int, int]:
            before = int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            inside.set()
            release.wait()  # a report still reading, its snapshot open
            return before, int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

        try:
            report = asyncio.ensure_future(store.read(slow_report))
            await asyncio.to_thread(inside.wait)
            await writer.record(ScanEvent(time=NOW, outcome=Outcome.VIEW, user_agent="customer"))
            assert not report.done(), "the report was still reading when the scan committed"
            assert await store.count_events() == 1, "the scan is committed and visible to a new read"
            release.set()
            assert await report == (0, 0), "the report kept its own consistent snapshot"
        finally:
            release.set()
            await writer.close()
            await store.close()

    asyncio.run(scenario())


def test_reads_inside_a_transaction_see_its_writes_and_others_do_not(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await Store.open(tmp_path / "r.sqlite3")
        try:
            async with store.transaction():
                await store.insert_events([ScanEvent(time=NOW, outcome=Outcome.VIEW)])
                assert await store.count_events() == 1  # the writer's own connection
                # another request (its own task and context) reads on a reader: committed rows only
                other = asyncio.get_running_loop().create_task(store.count_events(), context=contextvars.Context())
                assert await other == 0
            assert await store.count_events() == 1
        finally:
            await store.close()

    asyncio.run(scenario())

