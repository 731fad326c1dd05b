"""The webhook delivery worker: one task per server process, started by the app's lifespan.

Each round claims every enabled endpoint's oldest pending delivery whose time has come (so each endpoint gets
its events in order; at most ``CLAIM_LIMIT`` a round), sends them concurrently (a bounded number of worker
threads), then records the outcomes in one transaction. Several servers may share the database: the claim is
taken in one write transaction and holds the deliveries for ``LEASE``, so each attempt is sent by one process.
A delivery is marked delivered only after a 2xx answer, so a process killed in between leaves it claimed, and
it is sent again once the lease has run out (by any server), with the same ``webhook-id``: at least once,
receivers dedupe by that id. A server stopping normally hands its unrecorded claims back at once (``close``).

A failed attempt (no answer, a non-2xx status, a redirect, or a destination refused at send time) is retried
after ``webhooks.retry_delay`` (exponential with jitter); once the first failure is ``RETRY_WINDOW`` (24 h) old
the delivery is given up and the endpoint disabled, which the console shows as an alert.

The clock (scheduling), the random source (jitter), the resolver (SSRF check) and the sender are injected: tests
drive ``run_once`` with a fake clock and never sleep. The signature's ``webhook-timestamp`` is the real time
of the attempt (``wall``), which receivers compare with their own clock to refuse replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from . import destinations
from . import webhooks as hooks
from .models import Busy, Clock
from .store import Store

log = logging.getLogger(__name__)

POLL = 1.0  # seconds between looks at the outbox while idle (changes made by another process are seen then)
LOG_KEPT = timedelta(days=30)  # finished deliveries stay in the console's log this long
PURGE_EVERY = timedelta(hours=1)
CONCURRENCY = 8  # endpoints sent to at once
CLAIM_LIMIT = 4 * CONCURRENCY  # deliveries claimed in one round: four waves of sends at most
# How long a round's claim keeps its deliveries from the other servers. Far longer than a round can take (four
# waves of sends, each bounded by destinations.TIMEOUT for the connection and each read of the answer), so only a
# process that died mid-round lets it run out: its deliveries are then sent again by whichever server looks next.
LEASE = timedelta(minutes=5)
Sender = Callable[[destinations.Destination, str, bytes, dict[str, str]], int]


class Deliverer:
    def __init__(self, store: Store, secret: bytes, *, clock: Clock, allow_private: bool,
                 resolver: destinations.Resolver = destinations.system_resolver,
                 rand: Callable[[], float] = random.random, wall: Callable[[], float] = time.time,
                 send: Sender = destinations.post, poll: float = POLL) -> None:
        self._store = store
        self._secret = secret
        self.clock = clock
        self.allow_private = allow_private
        self.resolver = resolver
        self.rand = rand
        self.wall = wall
        self.send = send
        self.poll = poll
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._purged_at: datetime | None = None
        self._claim: str | None = None  # the round in flight's claim, handed back if the server stops meanwhile

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-delivery")

    async def close(self) -> None:
        """Stop; an attempt in flight is not recorded, and its claim is handed back, so it is sent again by the next
        server to look (this one after a restart, or another one now)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        claim, self._claim = self._claim, None
        if claim is not None:
            try:
                async with self._store.transaction():
                    await self._store.release_claim(claim, self.clock())
            except Exception:  # the lease hands them back anyway, only later
                log.warning("webhook deliveries in flight could not be handed back; they are retried after %s",
                            LEASE)

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll (after a console action)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except Busy:
                sent = 0  # the database is locked elsewhere: the same deliveries are due at the next round
            except Exception:
                log.exception("webhook delivery round failed")
                sent = 0
            if sent:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    async def run_once(self) -> int:
        """One round: claim every endpoint's due head delivery (up to ``CLAIM_LIMIT``), attempt them, record the
        outcomes still ours; the number attempted.
        Once an hour it also forgets finished deliveries older than ``LOG_KEPT`` (a bounded chunk)."""
        now = self.clock()
        if self._purged_at is None or not timedelta(0) <= now - self._purged_at < PURGE_EVERY:
            self._purged_at = now
            async with self._store.transaction():
                await self._store.purge_webhook_log(now - LOG_KEPT)
        if not await self._store.any_due(now):
            return 0
        claim = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"  # which process, which round
        async with self._store.transaction():
            due = await self._store.claim_deliveries(now, now + LEASE, claim, CLAIM_LIMIT)
        if not due:
            return 0
        self._claim = claim
        outcomes = await asyncio.gather(*(self._attempt(d, now) for d in due))
        async with self._store.transaction():
            recorded = await self._store.record_attempts(outcomes, claim)
        self._claim = None
        for o in recorded:
            if o.state == "failed":
                log.warning("webhook endpoint %d disabled after failing for %s", o.endpoint_id, hooks.RETRY_WINDOW)
        return len(due)

    async def _attempt(self, due: hooks.Due, now: datetime) -> hooks.Attempt:
        status: int | None = None
        try:
            dest = destinations.parse(due.endpoint.url, allow_private=self.allow_private)
            address = await destinations.checked_address(dest, allow_private=self.allow_private,
                                                         resolver=self.resolver)
            payload, headers = self._request(due, now)
            async with self._slots:
                status = await asyncio.to_thread(self.send, dest, address, payload, headers)
            error = "" if 200 <= status < 300 else f"answered HTTP {status}"
        except destinations.Refused as exc:
            error = f"refused: {exc}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"no answer: {type(exc).__name__}: {exc}"[:300]
        except Exception as exc:  # whatever goes wrong with one endpoint must not stop the others' deliveries
            log.exception("webhook attempt for endpoint %d failed", due.endpoint.id)
            error = f"failed: {type(exc).__name__}"
        if not error:
            return hooks.Attempt(due.id, due.endpoint.id, "delivered", now, status, "",
                                 first_failed_at=due.first_failed_at)
        first = due.first_failed_at or now
        if now - first >= hooks.RETRY_WINDOW:
            return hooks.Attempt(due.id, due.endpoint.id, "failed", now, status,
                                 f"gave up after {due.attempts + 1} attempts over {now - first}: {error}",
                                 first_failed_at=first)
        return hooks.Attempt(due.id, due.endpoint.id, "pending", now, status, error,
                             next_at=now + hooks.retry_delay(due.attempts + 1, self.rand), first_failed_at=first)

    def _request(self, due: hooks.Due, now: datetime) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one attempt: the stored body, signed, or a chat endpoint's line of text."""
        if due.endpoint.kind == hooks.CHAT:
            line = hooks.chat_line(due.body)
            text = "" if line is None else hooks.chat_text(line, now)
            return json.dumps({"text": text}, ensure_ascii=False).encode(), {"webhook-id": due.message_id}
        secret = hooks.endpoint_secret(self._secret, due.endpoint.nonce)
        return due.body.encode(), hooks.signed_headers(secret, due.message_id, int(self.wall()), due.body)
