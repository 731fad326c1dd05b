"""API tokens: each stored as its SHA-256 with a name, scope and lifetime (migration 13)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..models import ApiScope, ApiToken
from .base import StoreBase, _opt_ts, parse_ts, ts


def _api_token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(id=row["id"], name=row["name"], scope=ApiScope(row["scope"]),
                    created_at=parse_ts(row["created_at"]), expires_at=parse_ts(row["expires_at"]),
                    revoked_at=_opt_ts(row["revoked_at"]))


class ApiTokenStore(StoreBase):
    async def add_api_token(self, name: str, scope: ApiScope, token_hash: bytes, created_at: datetime,
                            expires_at: datetime) -> int:
        return await self._exec(
            "INSERT INTO api_tokens (name, scope, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (name, scope.value, token_hash, ts(created_at), ts(expires_at)))

    async def api_token_by_hash(self, token_hash: bytes) -> tuple[ApiToken, bytes] | None:
        """The token whose hash this is, with the stored hash (for the caller's constant-time check)."""
        row = await self._row("SELECT * FROM api_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else (_api_token(row), bytes(row["token_hash"]))

    async def api_token(self, name: str) -> ApiToken | None:
        row = await self._row("SELECT * FROM api_tokens WHERE name = ?", (name,))
        return None if row is None else _api_token(row)

    async def api_tokens(self) -> list[ApiToken]:
        return [_api_token(r) for r in await self._rows("SELECT * FROM api_tokens ORDER BY id")]

    async def revoke_api_token(self, token_id: int, at: datetime) -> None:
        await self._exec("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                         (ts(at), token_id))
