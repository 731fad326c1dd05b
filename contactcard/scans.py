"""Recording scans: the visitor record built from a request, and the group-committing writer.

Every request under /c/ hands one event to ``ScanWriter.record`` and waits for the commit of the batch
that carries it, so an answered scan is always on disk. One task owns the writes: whatever queued while
the previous commit ran goes into the next transaction, up to a cap. No fixed wait before a batch: it
costs throughput and buys nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass

from .metrics import ScanObserver
from .models import ContactcardError, Outcome, ScanEvent
from .store import MAX_APPEND, Store

log = logging.getLogger(__name__)

MAX_USER_AGENT = 512
MAX_REFERRER = 512
MAX_ACCEPT_LANGUAGE = 128
MAX_HEADER = 8 * 1024  # a longer user agent (or any header) is answered 431, still recorded cropped
LIMITED = frozenset({Outcome.UNKNOWN, Outcome.MALFORMED})


class ScanNotRecorded(ContactcardError):
    """The event could not be committed (queue full, shutting down, or the commit failed)."""


def crop(value: str, limit: int) -> str:
    """Keep a bounded, printable prefix of a header value."""
    value = value[:limit]
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else "\ufffd" for c in value)


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


@dataclass
class _Pending:
    event: ScanEvent
    done: asyncio.Future[None]
    overflow: bool = False  # count it in event_overflow instead of storing the row


class ScanWriter:
    def __init__(self, store: Store, *, max_queue: int = 4096, max_batch: int = 512,
                 observer: ScanObserver | None = None) -> None:
        self._store = store
        self.observer = observer or ScanObserver()
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(max_queue)
        self._max_batch = min(max_batch, MAX_APPEND)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.committed = 0  # events stored as rows
        self.limiter = BadTokenLimiter()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def queue_bound(self) -> int:
        return self._queue.maxsize

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="scan-writer")

    async def record(self, event: ScanEvent, *, overflow: bool = False) -> None:
        """Return once ``event`` is committed (as a row, or as a count with ``overflow``); else raise ScanNotRecorded.

        A client that hangs up cancels only its wait: the event stays queued and is committed anyway.
        """
        if self._closing or self._task is None or self._task.done():
            self.observer.shed("shutting_down")
            raise ScanNotRecorded("the server is shutting down")
        pending = _Pending(event, asyncio.get_running_loop().create_future(), overflow)
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self.observer.shed("queue_full")
            raise ScanNotRecorded("too many scans at once") from None
        await pending.done

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
        try:
            while not stopping:
                first = await self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < self._max_batch and not self._queue.empty():
                    item = self._queue.get_nowait()
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                await self._commit(batch)
        finally:
            # Whatever ends this task (cancellation included), nobody may be left waiting on an event.
            self._closing = True
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None and not item.done.done():
                    item.done.set_exception(ScanNotRecorded("the server is shutting down"))

    async def _commit(self, batch: list[_Pending]) -> None:
        rows = [p.event for p in batch if not p.overflow]
        dropped = Counter((p.event.time.strftime("%Y-%m-%d"), p.event.outcome.value) for p in batch if p.overflow)
        started = time.perf_counter()
        try:
            if dropped:
                async with self._store.transaction():
                    await self._store.insert_events(rows)
                    await self._store.add_overflow(dropped)
            else:  # the common case: one statement, one implicit transaction, one round trip
                await self._store.append_events(rows)
        except BaseException as exc:  # a failed commit must answer every waiter, never hang them
            if not isinstance(exc, Exception):
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(ScanNotRecorded("the server is shutting down"))
                raise
            log.error("scan batch of %d not committed: %s", len(batch), exc)
            self.observer.shed("commit_failed", len(batch))
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(ScanNotRecorded("the scan could not be saved"))
            return
        self.committed += len(rows)
        self.observer.committed(rows, [p.event for p in batch if p.overflow], time.perf_counter() - started)
        for p in batch:
            if not p.done.done():
                p.done.set_result(None)


async def cancel_quietly(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
