"""Webhooks: endpoints, the durable outbox (messages and their deliveries), chat opt-ins.

The outbox is written in the transaction that makes the change or commits the scans, so a crash can never
commit one without the other: ``enqueue`` (inside ``Service._change``, through ``enqueue_webhook``) and
``enqueue_scans`` (called by the scan writer's batch on the writer's thread). With no endpoint enabled, a
batch pays one read of the (empty) endpoints table and nothing else: about 12 µs per batch here.

A message is one event (its ``webhook-id`` and the exact body every attempt sends); a delivery is that message
for one endpoint, delivered in ``id`` order per endpoint (``claim_deliveries`` hands out only each endpoint's
oldest pending one).

Several servers may deliver from one database: ``claim_deliveries`` takes the due heads for one deliverer's round
in one statement of a write transaction, moving their ``next_at`` to the end of a lease, so no other deliverer
sees them due meanwhile; ``record_attempts`` writes an outcome only while the delivery still holds that round's
claim. The statements are SQL that PostgreSQL accepts too: there, under READ COMMITTED, a second claimer blocked
on the first one's rows re-checks the outer ``state``/``next_at`` conditions against the committed row and skips
it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..models import ScanEvent
from ..webhooks import (
    CHAT,
    CHAT_EVENTS,
    SCAN_TYPES,
    Attempt,
    Due,
    Endpoint,
    LogEntry,
    body,
    new_message_id,
    scan_data,
)
from .base import StoreBase, _opt_ts, parse_ts, ts
from .records import _employee

_ENABLED = "SELECT id, kind, events FROM webhook_endpoints WHERE enabled = 1"
_INSERT_MESSAGE = "INSERT INTO webhook_messages (message_id, type, created_at, body) VALUES (?, ?, ?, ?)"
_INSERT_DELIVERY = "INSERT INTO webhook_deliveries (endpoint_id, message_id, next_at) VALUES (?, ?, ?)"
_DUE_HEADS = """
    SELECT d.id FROM webhook_endpoints e
    JOIN webhook_deliveries d ON d.id = (SELECT MIN(id) FROM webhook_deliveries
                                         WHERE endpoint_id = e.id AND state = 'pending')
    WHERE e.enabled = 1 AND d.next_at <= ? ORDER BY d.id LIMIT ?"""
_CLAIM = f"""
    UPDATE webhook_deliveries SET claim = ?, next_at = ?
    WHERE id IN ({_DUE_HEADS}) AND state = 'pending' AND next_at <= ?"""  # noqa: S608 (constants only)
_CLAIMED = """
    SELECT d.id, d.attempts, d.first_failed_at, m.message_id, m.body, e.*
    FROM webhook_deliveries d
    JOIN webhook_endpoints e ON e.id = d.endpoint_id
    JOIN webhook_messages m ON m.id = d.message_id
    WHERE d.claim = ? AND d.state = 'pending' ORDER BY d.id"""


class WebhookStore(StoreBase):
    # --- endpoints ----------------------------------------------------------------------------

    async def add_webhook_endpoint(self, kind: str, url: str, name: str, events: Sequence[str], nonce: bytes,
                                   at: datetime) -> int:
        return await self._exec(
            "INSERT INTO webhook_endpoints (kind, url, name, events, nonce, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, url, name, "\n".join(events), nonce, ts(at)))

    async def webhook_endpoints(self) -> list[Endpoint]:
        return [_endpoint(r) for r in await self._rows("SELECT * FROM webhook_endpoints ORDER BY id")]

    async def webhook_endpoint(self, endpoint_id: int) -> Endpoint | None:
        row = await self._row("SELECT * FROM webhook_endpoints WHERE id = ?", (endpoint_id,))
        return None if row is None else _endpoint(row)

    async def remove_webhook_endpoint(self, endpoint_id: int) -> None:
        """The endpoint, its deliveries (cascade) and the opt-ins that chose it; the caller holds the transaction."""
        await self._on_writer_thread(_remove_endpoint, endpoint_id)

    async def enable_webhook_endpoint(self, endpoint_id: int) -> None:
        """Back in service: its pending deliveries go on in order, from now."""
        await self._exec("UPDATE webhook_endpoints SET enabled = 1, disabled_at = NULL, disabled_reason = '' "
                         "WHERE id = ?", (endpoint_id,))

    # --- the outbox ---------------------------------------------------------------------------

    async def enqueue_webhook(self, at: datetime, event_type: str, data: Mapping[str, Any]) -> int:
        """One event for every enabled endpoint subscribed to it; the caller holds the transaction. Returns the
        number of deliveries queued."""
        return await self._on_writer_thread(enqueue, at, event_type, data)

    async def enqueue_webhook_to(self, endpoint_id: int, at: datetime, event_type: str,
                                 data: Mapping[str, Any]) -> None:
        """One event for one endpoint, whatever it subscribes to (the console's "send test event")."""
        message = await self._exec(_INSERT_MESSAGE, (new_message_id(), event_type, ts(at), body(event_type, at, data)))
        await self._exec(_INSERT_DELIVERY, (endpoint_id, message, ts(at)))

    async def redeliver(self, endpoint_id: int, delivery_id: int, at: datetime) -> int | None:
        """A new delivery of the same message (same webhook-id) to the same endpoint, queued behind what is
        pending; None when the endpoint has no such delivery. The caller holds the transaction."""
        message = await self._scalar("SELECT message_id FROM webhook_deliveries WHERE id = ? AND endpoint_id = ?",
                                     (delivery_id, endpoint_id))
        if message is None:
            return None
        return await self._exec(_INSERT_DELIVERY, (endpoint_id, message, ts(at)))

    async def any_due(self, now: datetime) -> bool:
        """Whether a claim would find anything: read first, so an idle poll takes no write lock."""
        return bool(await self._rows(_DUE_HEADS, (ts(now), 1)))

    async def claim_deliveries(self, now: datetime, until: datetime, claim: str, limit: int) -> list[Due]:
        """Claim for one round (named ``claim``) up to ``limit`` enabled endpoints' oldest pending deliveries whose
        time has come: until ``until`` no one else is handed them. The caller holds the transaction."""
        await self._exec(_CLAIM, (claim, ts(until), ts(now), limit, ts(now)))
        return [Due(id=r["id"], endpoint=_endpoint(r), message_id=r["message_id"], body=r["body"],
                    attempts=r["attempts"], first_failed_at=_opt_ts(r["first_failed_at"]))
                for r in await self._rows(_CLAIMED, (claim,))]

    async def release_claim(self, claim: str, at: datetime) -> None:
        """Hand back what the round ``claim`` has not recorded, due at ``at`` (a server stopping mid-round: another
        server sends them at once instead of after the lease). The caller holds the transaction."""
        await self._exec("UPDATE webhook_deliveries SET claim = NULL, next_at = ? "
                         "WHERE claim = ? AND state = 'pending'", (ts(at), claim))

    async def purge_webhook_log(self, before: datetime, limit: int = 5000) -> int:
        """Forget up to ``limit`` deliveries finished (delivered or given up) before ``before``, and their messages
        once no delivery refers to them; the number of deliveries removed. The caller holds the transaction."""
        return await self._on_writer_thread(_purge, ts(before), limit)

    async def record_attempts(self, attempts: Iterable[Attempt], claim: str) -> list[Attempt]:
        """The outcomes of the round ``claim``; the caller holds the transaction. An outcome whose delivery no longer
        holds that claim (its lease ran out and another round took it over) is not recorded: the other round's
        counts. A delivery given up disables its endpoint (its other pending deliveries wait, in order, for it to be
        enabled again). Returns the outcomes recorded."""
        return await self._on_writer_thread(_record, list(attempts), claim)

    async def webhook_log(self, endpoint_id: int, *, limit: int = 100) -> list[LogEntry]:
        """The endpoint's deliveries, newest first."""
        rows = await self._rows(
            """SELECT d.*, m.message_id AS webhook_id, m.type, m.created_at FROM webhook_deliveries d
               JOIN webhook_messages m ON m.id = d.message_id WHERE d.endpoint_id = ? ORDER BY d.id DESC LIMIT ?""",
            (endpoint_id, limit))
        return [LogEntry(id=r["id"], endpoint_id=r["endpoint_id"], message_id=r["webhook_id"], type=r["type"],
                         created_at=parse_ts(r["created_at"]), state=r["state"], attempts=r["attempts"],
                         next_at=parse_ts(r["next_at"]), last_at=_opt_ts(r["last_at"]), last_status=r["last_status"],
                         last_error=r["last_error"]) for r in rows]

    # --- chat opt-ins -------------------------------------------------------------------------

    async def chat_optin(self, employee_id: int) -> int | None:
        found = await self._scalar("SELECT endpoint_id FROM chat_optins WHERE employee_id = ?", (employee_id,))
        return None if found is None else int(found)

    async def set_chat_optin(self, employee_id: int, endpoint_id: int | None) -> None:
        if endpoint_id is None:
            await self._exec("DELETE FROM chat_optins WHERE employee_id = ?", (employee_id,))
        else:
            await self._exec("INSERT INTO chat_optins (employee_id, endpoint_id) VALUES (?, ?) "
                             "ON CONFLICT (employee_id) DO UPDATE SET endpoint_id = excluded.endpoint_id",
                             (employee_id, endpoint_id))


def _endpoint(r: sqlite3.Row) -> Endpoint:
    return Endpoint(id=r["id"], kind=r["kind"], url=r["url"], name=r["name"],
                    events=tuple(e for e in r["events"].split("\n") if e), nonce=bytes(r["nonce"]),
                    enabled=bool(r["enabled"]), created_at=parse_ts(r["created_at"]),
                    disabled_at=_opt_ts(r["disabled_at"]), disabled_reason=r["disabled_reason"])


def _record(conn: sqlite3.Connection, attempts: list[Attempt], claim: str) -> list[Attempt]:
    recorded = []
    for a in attempts:
        cur = conn.execute(
            """UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_at = ?, last_status = ?,
                   last_error = ?, next_at = COALESCE(?, next_at), first_failed_at = ?, claim = NULL
               WHERE id = ? AND claim = ?""",
            (a.state, ts(a.at), a.status, a.error[:500], None if a.next_at is None else ts(a.next_at),
             None if a.first_failed_at is None else ts(a.first_failed_at), a.delivery_id, claim))
        if not cur.rowcount:
            continue
        recorded.append(a)
        if a.state == "failed":
            conn.execute("UPDATE webhook_endpoints SET enabled = 0, disabled_at = ?, disabled_reason = ? WHERE id = ?",
                         (ts(a.at), a.error[:500], a.endpoint_id))
    return recorded


def _forget_messages(conn: sqlite3.Connection, message_ids: Iterable[int]) -> None:
    """Delete these messages where no delivery refers to them any more."""
    conn.executemany("""DELETE FROM webhook_messages WHERE id = ?
                        AND NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE message_id = ?)""",
                     [(m, m) for m in sorted(set(message_ids))])


def _remove_endpoint(conn: sqlite3.Connection, endpoint_id: int) -> None:
    messages = [r[0] for r in conn.execute("SELECT message_id FROM webhook_deliveries WHERE endpoint_id = ?",
                                           (endpoint_id,))]
    conn.execute("DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,))  # its deliveries and opt-ins cascade
    _forget_messages(conn, messages)


def _purge(conn: sqlite3.Connection, before: str, limit: int) -> int:
    # By the ids found, so each statement touches only the rows it removes (the write lock is held briefly).
    rows = conn.execute("""SELECT id, message_id FROM webhook_deliveries
                           WHERE state != 'pending' AND last_at < ? ORDER BY id LIMIT ?""", (before, limit)).fetchall()
    conn.executemany("DELETE FROM webhook_deliveries WHERE id = ?", [(r[0],) for r in rows])
    _forget_messages(conn, (r[1] for r in rows))
    return len(rows)


def _subscribers(conn: sqlite3.Connection) -> dict[str, list[int]]:
    """Enabled standard endpoints by event type, and the enabled chat endpoints under ``CHAT``."""
    found: dict[str, list[int]] = {}
    for endpoint_id, kind, events in conn.execute(_ENABLED).fetchall():
        for event_type in (CHAT,) if kind == CHAT else events.split("\n"):
            found.setdefault(event_type, []).append(endpoint_id)
    return found


def _queue(conn: sqlite3.Connection, at: datetime, event_type: str, payload: str, endpoints: Sequence[int]) -> int:
    message = conn.execute(_INSERT_MESSAGE, (new_message_id(), event_type, ts(at), payload)).lastrowid
    conn.executemany(_INSERT_DELIVERY, [(e, message, ts(at)) for e in endpoints])
    return len(endpoints)


def enqueue(conn: sqlite3.Connection, at: datetime, event_type: str, data: Mapping[str, Any]) -> int:
    """On the writer's thread, inside the caller's transaction: see ``WebhookStore.enqueue_webhook``."""
    endpoints = _subscribers(conn).get(event_type, [])
    return _queue(conn, at, event_type, body(event_type, at, data), endpoints) if endpoints else 0


def enqueue_scans(conn: sqlite3.Connection, events: Sequence[ScanEvent]) -> None:
    """On the writer's thread, inside the batch's transaction, right after ``events`` were inserted (so they hold
    the highest ids, in order): a message per person's hit for the endpoints subscribed to its type and, for a
    tap or a save, for the chat endpoint its employee opted in to. Bots never produce one."""
    subscribers = _subscribers(conn)
    if not subscribers:
        return  # the common case: one lookup of a (nearly) empty table
    chats = set(subscribers.get(CHAT, ()))
    optins: dict[int, int] = {}
    if chats:
        optins = {e: c for e, c in conn.execute("SELECT employee_id, endpoint_id FROM chat_optins") if c in chats}
    first_id = int(conn.execute("SELECT MAX(id) FROM events").fetchone()[0]) - len(events) + 1
    wanted = []
    for offset, e in enumerate(events):
        event_type = SCAN_TYPES.get(e.outcome.value)
        if e.is_bot or e.employee_id is None or event_type is None:
            continue
        targets = list(subscribers.get(event_type, ()))
        if event_type in CHAT_EVENTS and e.employee_id in optins:
            targets.append(optins[e.employee_id])
        if targets:
            wanted.append((first_id + offset, e, event_type, targets))
    if not wanted:
        return
    ids = sorted({e.employee_id for _, e, _, _ in wanted if e.employee_id is not None})
    marks = ", ".join("?" * len(ids))
    employees = {r["id"]: _employee(r) for r in conn.execute(
        f"SELECT * FROM employees WHERE id IN ({marks})", ids)}  # noqa: S608 (placeholders only)
    for event_id, e, event_type, targets in wanted:
        assert e.employee_id is not None
        _queue(conn, e.time, event_type, body(event_type, e.time, scan_data(event_id, e, employees[e.employee_id])),
               targets)


