"""A cancelled transaction (a shutdown mid-purge, a client gone mid-write) leaves the shared connection clean.

Found by starting and stopping the real app hundreds of times: a cancellation that arrived while a statement
was still queued for the database thread made the ROLLBACK fail, the resulting error replaced the cancel, the
daily job caught it as an ordinary failure and went back to sleep, and the server's shutdown waited forever.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contactcard import stats
from contactcard.config import load_secret
from contactcard.models import EmployeeProfile, Outcome, ScanEvent
from contactcard.scans import ScanWriter
from contactcard.schema import LATEST
from contactcard.service import Service
from contactcard.store import DataChanged, Store

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)


def _event(n: int) -> ScanEvent:
    return ScanEvent(time=NOW, outcome=Outcome.VIEW, user_agent=f"ua-{n}")


@pytest.mark.parametrize("yields_before_cancel", [0, 1, 2, 3, 5, 8])
def test_a_cancelled_transaction_rolls_back_and_frees_the_connection(tmp_path: Path,
                                                                     yields_before_cancel: int) -> None:
    async def scenario() -> None:
        store = await Store.open(tmp_path / "t.sqlite3")
        try:
            async def write() -> None:
                async with store.transaction():
                    await store.insert_events([_event(1)])
                    await asyncio.sleep(3600)  # still inside the transaction when cancelled

            task = asyncio.ensure_future(write())
            for _ in range(yields_before_cancel):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await store.count_events() == 0, "the cancelled transaction wrote nothing"
            await store.append_events([_event(2)])  # not swallowed into a dangling transaction
            async with store.transaction():
                await store.insert_events([_event(3)])
        finally:
            await store.close()
        reopened = await Store.open(tmp_path / "t.sqlite3")
        try:
            assert sorted(e.user_agent for e in await reopened.events()) == ["ua-2", "ua-3"]
        finally:
            await reopened.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("yields_before_cancel", [0, 1, 2, 3, 4, 6, 10, 16])
def test_the_daily_job_stops_when_cancelled_wherever_it_is(tmp_path: Path, yields_before_cancel: int) -> None:
    """The server's shutdown cancels the job; wherever that lands (mid-purge included) the job must end."""

    async def scenario() -> None:
        store = await Store.open(tmp_path / "j.sqlite3")
        try:
            service = Service(store, secret=load_secret(tmp_path / "secret.key"), base_url="https://x.example")
            await store.append_events([_event(n) for n in range(50)])
            job = asyncio.ensure_future(stats.daily_job(service))
            for _ in range(yields_before_cancel):
                await asyncio.sleep(0)
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(job, timeout=10)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_change_and_its_audit_row_carry_one_time(tmp_path: Path) -> None:
    """A clock read per statement let revoked_at (or a new expiry) differ from what the audit trail says."""
    ticks = itertools.count()

    def ticking_clock() -> datetime:
        return NOW + timedelta(microseconds=next(ticks))

    async def scenario() -> None:
        store = await Store.open(tmp_path / "t.sqlite3")
        try:
            service = Service(store, secret=b"k" * 32, base_url="https://cards.example.co.jp", clock=ticking_clock)
            await service.add_employee(EmployeeProfile(email="taro@example.co.jp", family_name="山田"), actor="test")
            await service.issue_card("taro@example.co.jp", actor="test")
            extended = await service.extend_card("taro@example.co.jp", days=10, actor="test")
            revoked = await service.revoke_card("taro@example.co.jp", actor="test")
            after = {row.action: json.loads(row.after or "{}") for row in await store.audit_events()}
        finally:
            await store.close()
        assert revoked.revoked_at is not None
        assert after["card.revoke"]["revoked_at"] == revoked.revoked_at.isoformat()
        assert after["card.extend"]["expires_at"] == extended.card.expires_at.isoformat()

    asyncio.run(scenario())


def test_a_batch_expecting_a_data_version_stores_nothing_once_another_connection_has_committed(
        tmp_path: Path) -> None:
    """The scan lane's freshness check (``append_events(expect_version=...)``): read under the write lock, inside
    the batch's own transaction, so a commit by another program (the CLI) between the cache's check and the
    batch is always seen, and the batch is refused whole."""
    db = tmp_path / "v.sqlite3"

    async def scenario() -> None:
        store = await Store.open(db)
        try:
            version = await store.data_version()
            await store.append_events([_event(1)], expect_version=version)  # nobody else wrote: stored
            assert await store.data_version() == version, "its own commits do not move it"
            with sqlite3.connect(db) as other:  # another program's commit
                other.execute("INSERT INTO event_overflow (day, outcome, dropped) VALUES ('2026-11-28', 'unknown', 1)")
            with pytest.raises(DataChanged) as changed:
                await store.append_events([_event(2), _event(3)], expect_version=version)
            assert changed.value.version != version
            assert [e.user_agent for e in await store.events()] == ["ua-1"], "nothing of the refused batch"
            await store.append_events([_event(4)], expect_version=changed.value.version)
            assert sorted(e.user_agent for e in await store.events()) == ["ua-1", "ua-4"]
        finally:
            await store.close()

    asyncio.run(scenario())


def test_the_console_waits_for_scans_in_flight_but_never_longer_than_its_patience(tmp_path: Path) -> None:
    """``ScanWriter.quiet``, which a console page awaits first: at once when no scan is queued or committing;
    while one is (here held up by another program's lock), for at most the patience given; at once again after."""
    db = tmp_path / "q.sqlite3"

    async def scenario() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        store = await Store.open(db)
        writer = ScanWriter(store)
        writer.start()
        try:
            begin = loop.time()
            await writer.quiet(5.0)
            idle = loop.time() - begin
            blocker = sqlite3.connect(db, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # another program holds the write lock
            scan = asyncio.ensure_future(writer.record(_event(1), deadline=loop.time() + 5))
            await asyncio.sleep(0.01)
            begin = loop.time()
            await writer.quiet(0.05)
            busy = loop.time() - begin
            blocker.execute("ROLLBACK")
            blocker.close()
            await scan  # committed once the lock is gone
            begin = loop.time()
            await writer.quiet(5.0)
            return idle, busy, loop.time() - begin
        finally:
            await writer.close()
            await store.close()

    idle, busy, after = asyncio.run(scenario())
    assert idle < 0.5 and after < 0.5, "nothing in flight: no wait"
    assert 0.04 <= busy < 1.0, "a scan in flight: the console waits, but only for its patience"


def test_two_programs_upgrading_one_database_at_once_both_open_it(tmp_path: Path) -> None:
    """Two servers (or a server and ``migrate``) started together on a database from an older version: each
    migration is applied once, by whichever comes first, and neither stops with "table already exists"."""
    path = tmp_path / "old.sqlite3"

    async def scenario() -> None:
        old = await Store.open(path, migrate_to=12)
        await old.close()
        opened = await asyncio.gather(Store.open(path), Store.open(path), return_exceptions=True)
        stores = [s for s in opened if isinstance(s, Store)]
        try:
            assert len(stores) == 2, f"one refused to start: {opened}"
            assert [await s.schema_version() for s in stores] == [LATEST, LATEST]
        finally:
            for s in stores:
                await s.close()

    asyncio.run(scenario())


def test_two_servers_purging_at_the_same_hour_both_finish(tmp_path: Path) -> None:
    """Both servers' daily jobs purge at 03:17: each chunk waits its turn behind the other's, so neither night's
    job fails with "database is locked" (and is put off an hour), and every expired event goes."""
    path = tmp_path / "t.sqlite3"
    old = NOW - timedelta(days=800)

    async def scenario() -> None:
        store = await Store.open(path)
        async with store.transaction():
            await store.insert_events([ScanEvent(time=old + timedelta(seconds=i), outcome=Outcome.VIEW,
                                                 user_agent=f"ua-{i}") for i in range(8 * stats.PURGE_CHUNK)])
        await store.close()
        stores = [await Store.open(path) for _ in range(2)]
        try:
            services = [Service(s, secret=load_secret(tmp_path / "secret.key"), base_url="http://127.0.0.1",
                                clock=lambda: NOW) for s in stores]
            deleted = await asyncio.gather(*(s.purge() for s in services), return_exceptions=True)
            assert all(isinstance(n, int) for n in deleted), deleted
            assert sum(n for n in deleted if isinstance(n, int)) == 8 * stats.PURGE_CHUNK
            assert await stores[0].oldest_event_time() is None
        finally:
            for s in stores:
                await s.close()

    asyncio.run(scenario())
