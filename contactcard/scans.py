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
from dataclasses import dataclass

from .models import ContactcardError, ScanEvent
from .store import Store

log = logging.getLogger(__name__)

MAX_USER_AGENT = 512
MAX_REFERRER = 512
MAX_ACCEPT_LANGUAGE = 128


class ScanNotRecorded(ContactcardError):
    """The event could not be committed (queue full, shutting down, or the commit failed)."""


def crop(value: str, limit: int) -> str:
    """Keep a bounded, printable prefix of a header value."""
    value = value[:limit]
    return "".join(c if c.isprintable() else "\ufffd" for c in value)


@dataclass
class _Pending:
    event: ScanEvent
    done: asyncio.Future[None]


class ScanWriter:
    def __init__(self, store: Store, *, max_queue: int = 4096, max_batch: int = 512) -> None:
        self._store = store
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(max_queue)
        self._max_batch = max_batch
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        self.committed = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="scan-writer")

    async def record(self, event: ScanEvent) -> None:
        """Return once ``event`` is committed; raise ScanNotRecorded otherwise."""
        if self._closing or self._task is None:
            raise ScanNotRecorded("the server is shutting down")
        pending = _Pending(event, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise ScanNotRecorded("too many scans at once") from None
        await asyncio.shield(pending.done)

    async def close(self) -> None:
        """Stop taking events, commit everything already queued, then end the task."""
        if self._task is None or self._closing:
            return
        self._closing = True
        await self._queue.put(None)
        await self._task

    async def _run(self) -> None:
        stopping = False
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

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            async with self._store.transaction():
                await self._store.insert_events([p.event for p in batch])
        except Exception as exc:  # a failed commit must answer every waiter, never hang them
            log.error("scan batch of %d not committed: %s", len(batch), exc)
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(ScanNotRecorded("the scan could not be saved"))
            return
        self.batches += 1
        self.committed += len(batch)
        for p in batch:
            if not p.done.done():
                p.done.set_result(None)


async def cancel_quietly(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
