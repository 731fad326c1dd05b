"""SCIM provisioning: the identity provider's bearer tokens, its view of each employee, its latest errors."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..models import ScimError, ScimIdentity, ScimToken
from .base import StoreBase, _opt_ts, parse_ts, ts


def _identity(row: sqlite3.Row) -> ScimIdentity:
    return ScimIdentity(employee_id=row["employee_id"], user_name=row["user_name"], document=row["document"],
                        created_at=parse_ts(row["created_at"]), updated_at=parse_ts(row["updated_at"]),
                        deleted_at=_opt_ts(row["deleted_at"]))


def _token(row: sqlite3.Row) -> ScimToken:
    return ScimToken(id=row["id"], created_at=parse_ts(row["created_at"]), created_by=row["created_by"],
                     revoked_at=_opt_ts(row["revoked_at"]), last_used_at=_opt_ts(row["last_used_at"]))


class ScimStore(StoreBase):
    # --- SCIM identities (migration 9) ----------------------------------------------------------

    async def scim_identities(self) -> list[ScimIdentity]:
        return [_identity(r) for r in await self._rows("SELECT * FROM scim_identities ORDER BY employee_id")]

    async def scim_identity(self, employee_id: int) -> ScimIdentity | None:
        row = await self._row("SELECT * FROM scim_identities WHERE employee_id = ?", (employee_id,))
        return None if row is None else _identity(row)

    async def scim_identity_named(self, user_name: str) -> ScimIdentity | None:
        """The resource (not deleted) with this userName, compared case-insensitively."""
        row = await self._row("SELECT * FROM scim_identities WHERE user_name = ? AND deleted_at IS NULL",
                              (user_name,))
        return None if row is None else _identity(row)

    async def count_scim_identities(self) -> int:
        return int(await self._scalar("SELECT COUNT(*) FROM scim_identities WHERE deleted_at IS NULL"))

    async def save_scim_identity(self, identity: ScimIdentity) -> None:
        await self._exec(
            """INSERT INTO scim_identities (employee_id, user_name, document, created_at, updated_at, deleted_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (employee_id) DO UPDATE SET user_name = excluded.user_name,
                   document = excluded.document, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at""",
            (identity.employee_id, identity.user_name, identity.document, ts(identity.created_at),
             ts(identity.updated_at), None if identity.deleted_at is None else ts(identity.deleted_at)),
        )

    # --- SCIM tokens ----------------------------------------------------------------------------

    async def add_scim_token(self, token_hash: bytes, at: datetime, created_by: str) -> int:
        return await self._exec("INSERT INTO scim_tokens (token_hash, created_at, created_by) VALUES (?, ?, ?)",
                                (token_hash, ts(at), created_by))

    async def scim_token(self, token_hash: bytes) -> tuple[ScimToken, bytes] | None:
        """The token stored under this digest, with the digest as stored (for the constant-time final check)."""
        row = await self._row("SELECT * FROM scim_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else (_token(row), bytes(row["token_hash"]))

    async def scim_tokens(self) -> list[ScimToken]:
        return [_token(r) for r in await self._rows("SELECT * FROM scim_tokens ORDER BY id DESC")]

    async def revoke_scim_tokens(self, token_id: int | None, at: datetime) -> list[int]:
        """Revoke one live token (or every live one, None); the ids revoked."""
        rows = await self._rows("SELECT id FROM scim_tokens WHERE revoked_at IS NULL AND (? IS NULL OR id = ?)",
                                (token_id, token_id))
        ids = [int(r["id"]) for r in rows]
        for each in ids:
            await self._exec("UPDATE scim_tokens SET revoked_at = ? WHERE id = ?", (ts(at), each))
        return ids

    async def touch_scim_token(self, token_id: int, at: datetime) -> None:
        await self._exec("UPDATE scim_tokens SET last_used_at = ? WHERE id = ?", (ts(at), token_id))

    # --- SCIM errors ----------------------------------------------------------------------------

    async def add_scim_error(self, error: ScimError, keep: int) -> None:
        """Note an error and forget all but the latest ``keep``."""
        await self._exec(
            "INSERT INTO scim_errors (time, method, route, status, scim_type, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (ts(error.time), error.method, error.route, error.status, error.scim_type, error.detail),
        )
        await self._exec(
            "DELETE FROM scim_errors WHERE id NOT IN (SELECT id FROM scim_errors ORDER BY id DESC LIMIT ?)", (keep,))

    async def scim_errors(self, limit: int) -> list[ScimError]:
        rows = await self._rows("SELECT * FROM scim_errors ORDER BY id DESC LIMIT ?", (limit,))
        return [ScimError(time=parse_ts(r["time"]), method=r["method"], route=r["route"], status=r["status"],
                          scim_type=r["scim_type"], detail=r["detail"]) for r in rows]
