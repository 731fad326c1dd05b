"""Recording scans: the group-committing writer.

Every request under /c/ hands one event to ``ScanWriter.record`` and waits for the commit of the batch
that carries it, so an answered scan is always on disk. One task owns the writes: whatever queued while
the previous commit ran goes into the next transaction, up to a cap. No fixed wait before a batch: it
costs throughput and buys nothing.

Each event has a deadline. While the database is locked by another connection the writer retries in short
slices; an event whose deadline passes before a commit attempt takes it is withdrawn and its request answered
503 with nothing stored. An event already inside an attempt waits for that attempt (one busy slice at most):
whatever it says, committed or not, is the answer. So every success is stored and no failure is.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .metrics import ScanObserver
from .models import Busy, ContactcardError, Outcome, ScanEvent
from .store import MAX_APPEND, DataChanged, Store

log = logging.getLogger(__name__)

LIMITED = frozenset({Outcome.UNKNOWN, Outcome.MALFORMED})
PATIENCE = 5.0  # seconds an event given no deadline of its own may wait for a locked database
BUSY_PAUSE = 0.005  # between two commit attempts while another connection holds the lock


class ScanNotRecorded(ContactcardError):
    """The event was not committed (queue full, deadline passed, shutting down, or the commit failed)."""


class BadTokenLimiter:
    """Rows for unknown or malformed links: at most ``per_key`` a minute per visitor key, ``total`` in all.

    Beyond that, hits are counted per day instead of stored one by one, so a flood of made-up links can
    neither fill the disk nor grow memory: the table of keys is dropped every minute and bounded in between.
    """

    def __init__(self, per_key: int = 20, total: int = 1000, window_seconds: float = 60.0,
                 max_keys: int = 10_000) -> None:
        self.per_key, self.total, self.window, self.max_keys = per_key, total, window_seconds, max_keys
        self._window_start = float("-inf")
        self._counts: dict[str, int] = {}
        self._total = 0

    def allow(self, key: str, now: float) -> bool:
        """True if this hit may be stored as a row; ``now`` is a monotonic time in seconds."""
        if now - self._window_start >= self.window:
            self._window_start, self._total = now, 0
            self._counts.clear()
        count = self._counts.get(key, 0)
        if count >= self.per_key or self._total >= self.total or (count == 0 and len(self._counts) >= self.max_keys):
            return False
        self._counts[key] = count + 1
        self._total += 1
        return True


Answer = Callable[[BaseException | None], None]  # called once: None when committed, else why not


class Stale(ScanNotRecorded):
    """Another connection committed since the event's resolution was read: it must be resolved again."""


def _stale() -> Stale:
    return Stale("the link changed while the scan was being saved")


@dataclass(eq=False)
class _Pending:
    event: ScanEvent
    answer: Answer
    deadline: float  # loop time
    overflow: bool = False  # count it in event_overflow instead of storing the row
    fresh_at: int | None = None  # resolved from the cache as of this data_version: checked inside the commit
    committing: bool = False  # inside a commit attempt: only that attempt's outcome may answer it
    withdrawn: bool = False  # answered "not recorded": must never be committed
    answered: bool = False
    timer: asyncio.TimerHandle | None = None  # its own, when it was queued out of deadline order

    def withdraw(self, exc: ScanNotRecorded) -> None:
        """Answer "not recorded": from now on it must never be committed."""
        self.withdrawn = True
        self.settle(exc)

    def settle(self, exc: BaseException | None = None) -> None:
        if self.answered:
            return
        self.answered = True
        if self.timer is not None:
            self.timer.cancel()
        self.answer(exc)


class Freshness(Protocol):
    """What the scan lane's cached resolutions are valid for (the service's cache, see ``Service``)."""

    @property
    def seen_version(self) -> int: ...

    def data_changed(self, version: int) -> None: ...


class ScanWriter:
    def __init__(self, store: Store, *, max_queue: int = 4096, max_batch: int = 512,
                 observer: ScanObserver | None = None, freshness: Freshness | None = None) -> None:
        self._store = store
        self.freshness = freshness
        self.observer = observer or ScanObserver()
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(max_queue)
        self._max_batch = min(max_batch, MAX_APPEND)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.committed = 0  # events stored as rows
        self.limiter = BadTokenLimiter()
        self._idle = asyncio.Event()  # set while nothing is queued or being committed (see ``quiet``)
        # The queued events in deadline order share one timer (a timer per event was ~3 us of a scan's CPU): it
        # is set for the first one's deadline and, when it fires, withdraws every event then due and is set for
        # the next. An event whose deadline is earlier than the last queued one's has a timer of its own.
        self._due: collections.deque[_Pending] = collections.deque()
        self._due_timer: asyncio.TimerHandle | None = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def queue_bound(self) -> int:
        return self._queue.maxsize

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="scan-writer")

    async def record(self, event: ScanEvent, *, deadline: float | None = None) -> None:
        """Return once ``event`` is committed; else raise ScanNotRecorded, and then it is never stored.

        ``deadline`` is a time of the running loop (``loop.time()``). Hits on unknown or malformed links
        beyond the limiter's allowance are committed as a count per day, not a row. A client that hangs up
        cancels only its wait: the event stays queued and is committed anyway.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def answer(exc: BaseException | None) -> None:
            if not done.done():
                done.set_result(None) if exc is None else done.set_exception(exc)

        self.submit(event, answer, deadline=deadline)
        await done

    async def quiet(self, patience: float) -> None:
        """Return once no scan is queued or being committed, or after ``patience`` seconds, whichever is first:
        what the console waits for before its work, so that under a flood of scans it takes its turn after them
        (customers first) without ever waiting long."""
        if self._idle.is_set() or self._task is None or self._task.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience):
                await self._idle.wait()

    def can_take(self) -> bool:
        """Whether ``submit`` would queue an event now (running, not closing, room in the queue)."""
        return not self._closing and self._task is not None and not self._task.done() and not self._queue.full()

    def submit(self, event: ScanEvent, answer: Answer, *, deadline: float | None = None,
               fresh_at: int | None = None) -> None:
        """Queue ``event``; ``answer`` is called once, on the loop: None once it is committed, else the
        ScanNotRecorded saying why not (then it is never stored). Raises ScanNotRecorded at once when the
        event cannot even be queued. ``fresh_at``: the ``PRAGMA data_version`` its resolution was read at, for
        a resolution taken from the cache without a check (the scan lane); the commit then checks it under the
        write lock, and answers Stale, storing nothing, if another connection has committed since.
        """
        if self._closing or self._task is None or self._task.done():
            self.observer.shed("shutting_down")
            raise ScanNotRecorded("the server is shutting down")
        loop = self._task.get_loop()  # the loop it runs on (get_running_loop makes a getpid system call each time)
        overflow = event.outcome in LIMITED and not self.limiter.allow(event.visitor_key, time.monotonic())
        pending = _Pending(event, answer, loop.time() + PATIENCE if deadline is None else deadline, overflow,
                           fresh_at)
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self.observer.shed("queue_full")
            raise ScanNotRecorded("too many scans at once") from None
        due = self._due
        if due and pending.deadline < due[-1].deadline:  # out of deadline order: a timer of its own
            pending.timer = loop.call_at(pending.deadline, self._overdue, pending)
            return
        if not due and (self._due_timer is None or self._due_timer.when() > pending.deadline):
            if self._due_timer is not None:
                self._due_timer.cancel()
            self._due_timer = loop.call_at(pending.deadline, self._on_due)
        due.append(pending)

    def _on_due(self) -> None:
        """The shared timer of the events in ``_due``: withdraw those past their deadline, wait for the next."""
        self._due_timer = None
        now = asyncio.get_running_loop().time()
        due = self._due
        while due and (due[0].answered or due[0].deadline <= now):
            self._overdue(due.popleft())
        if due:
            self._due_timer = asyncio.get_running_loop().call_at(due[0].deadline, self._on_due)

    def _forget_answered(self) -> None:
        """Drop answered events from the head of ``_due`` (batches are answered in order), so it holds only the
        ones still waiting, not every event of the last deadline's length."""
        due = self._due
        while due and due[0].answered:
            due.popleft()

    def _overdue(self, pending: _Pending) -> None:
        pending.timer = None
        if pending.answered or pending.committing:
            return  # answered; or an attempt has it, and its outcome is the answer (one busy slice at most)
        self.observer.shed("deadline")
        pending.withdraw(ScanNotRecorded("the scan could not be saved in time"))

    async def close(self) -> None:
        """Stop taking events, commit everything already queued, then end the task."""
        if self._task is None or self._closing:
            return
        self._closing = True
        if not self._task.done():
            await self._queue.put(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        stopping = False
        batch: list[_Pending] = []
        try:
            while batch or not stopping:
                if not batch:
                    if self._queue.empty():
                        self._idle.set()
                    first = await self._queue.get()
                    self._idle.clear()
                    if first is None:
                        break
                    batch = [first]
                while len(batch) < self._max_batch and not self._queue.empty():
                    item = self._queue.get_nowait()
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                batch = self._still_wanted(batch)
                if batch and await self._commit(batch):
                    batch = []
                elif batch:
                    await asyncio.sleep(BUSY_PAUSE)  # locked elsewhere: let other work use the connection
                self._forget_answered()
        finally:
            if self._due_timer is not None:
                self._due_timer.cancel()
            # Whatever ends this task (cancellation included), nobody may be left waiting on an event.
            self._closing = True
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None:
                    batch.append(item)
            for p in batch:
                p.settle(ScanNotRecorded("the server is shutting down"))
            self._due.clear()

    def _still_wanted(self, batch: list[_Pending]) -> list[_Pending]:
        """Drop what was answered "not recorded" while it waited, and what is past its deadline."""
        now = asyncio.get_running_loop().time()
        kept = []
        for p in batch:
            if not p.withdrawn and p.deadline <= now:
                self.observer.shed("deadline")
                p.withdraw(ScanNotRecorded("the scan could not be saved in time"))
            if not p.withdrawn:
                kept.append(p)
        return kept

    async def _commit(self, batch: list[_Pending]) -> bool:
        """One attempt; False if it must be tried again: another connection held the lock, or it had committed
        since the lane's resolutions were read (those are answered Stale and the rest goes again)."""
        expect = self._expected_version(batch)
        rows = [p.event for p in batch if not p.overflow and not p.withdrawn]
        dropped = Counter((p.event.time.strftime("%Y-%m-%d"), p.event.outcome.value) for p in batch if p.overflow)
        if not rows and not dropped:
            return True  # every event was answered Stale: nothing to commit
        started = time.perf_counter()
        for p in batch:
            p.committing = True
        try:
            if dropped:
                async with self._store.transaction(patience=0):
                    await self._store.check_data_version(expect)
                    await self._store.insert_events(rows)
                    await self._store.add_overflow(dropped)
            else:  # the common case: one statement, one implicit transaction, one round trip
                await self._store.append_events(rows, expect_version=expect)
        except Busy:
            for p in batch:
                p.committing = False
            return False
        except DataChanged as changed:
            if self.freshness is not None:
                self.freshness.data_changed(changed.version)
            for p in batch:
                p.committing = False
                if p.fresh_at is not None:
                    p.withdraw(_stale())
            return False
        except BaseException as exc:  # a failed commit must answer every waiter, never hang them
            if not isinstance(exc, Exception):
                for p in batch:
                    p.settle(ScanNotRecorded("the server is shutting down"))
                raise
            log.error("scan batch of %d not committed: %s", len(batch), exc)
            self.observer.shed("commit_failed", len(batch))
            for p in batch:
                p.settle(ScanNotRecorded("the scan could not be saved"))
            return True
        self.committed += len(rows)
        self.observer.committed(rows, [p.event for p in batch if p.overflow], time.perf_counter() - started)
        for p in batch:
            if not p.withdrawn:
                p.settle()
        return True

    def _expected_version(self, batch: list[_Pending]) -> int | None:
        """The data_version the commit must find, if the batch holds resolutions read from the cache; those read
        before the cache was last dropped are answered Stale now (they cannot be stored as they are)."""
        checked = [p for p in batch if p.fresh_at is not None and not p.withdrawn]
        if not checked:
            return None
        current = self.freshness.seen_version if self.freshness is not None else None
        for p in checked:
            if p.fresh_at != current:
                p.withdraw(_stale())
        return current


async def cancel_quietly(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
