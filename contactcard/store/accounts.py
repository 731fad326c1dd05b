"""Accounts: users, sessions, one-time links, sign-in failures and throttles, the audit trail."""

from __future__ import annotations

from datetime import datetime

from ..models import (
    AuditEvent,
)
from .base import StoreBase, _opt_ts, parse_ts, ts
from .records import InvitationRecord, SessionRecord, UserRecord, _user


class AccountStore(StoreBase):
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

    async def add_session(self, id_hash: bytes, user_id: int, at: datetime, *, oidc_issuer: str | None = None,
                          id_token_sealed: bytes | None = None) -> None:
        await self._exec(
            """INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, oidc_issuer, id_token_sealed)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (id_hash, user_id, ts(at), ts(at), oidc_issuer, id_token_sealed),
        )

    async def session(self, id_hash: bytes) -> SessionRecord | None:
        row = await self._row("SELECT * FROM sessions WHERE id_hash = ?", (id_hash,))
        if row is None:
            return None
        return SessionRecord(user_id=row["user_id"],
                             created_at=parse_ts(row["created_at"]), last_seen_at=parse_ts(row["last_seen_at"]),
                             oidc_issuer=row["oidc_issuer"], id_token_sealed=row["id_token_sealed"])

    async def touch_session(self, id_hash: bytes, at: datetime) -> None:
        await self._exec("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", (ts(at), id_hash))

    async def delete_session(self, id_hash: bytes) -> None:
        await self._exec("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))

    async def delete_user_sessions(self, user_id: int) -> None:
        await self._exec("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    async def delete_employee_sessions(self) -> int:
        """End every employee's session (admins keep theirs); how many ended."""
        count = int(await self._scalar(
            "SELECT COUNT(*) FROM sessions WHERE user_id IN (SELECT id FROM users WHERE role = 'employee')"))
        await self._exec("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE role = 'employee')")
        return count

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


    async def count_audit_events(self, *, actor: str | None = None) -> int:
        return int(await self._scalar("SELECT COUNT(*) FROM audit WHERE ? IS NULL OR actor = ?", (actor, actor)))

    async def audit_actors(self) -> list[str]:
        return [r["actor"] for r in await self._rows("SELECT DISTINCT actor FROM audit ORDER BY actor")]

