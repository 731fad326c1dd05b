"""Cards: issue, look up, revoke, extend."""

from __future__ import annotations

from datetime import datetime

from ..models import (
    Card,
)
from .base import StoreBase, ts
from .records import CardRecord, _card


class CardStore(StoreBase):
    # --- cards --------------------------------------------------------------------------------

    async def insert_card(self, employee_id: int, label: str, nonce: bytes, token_digest: bytes,
                          created_at: datetime, expires_at: datetime) -> int:
        generation = await self._scalar(
            "SELECT COALESCE(MAX(generation), 0) + 1 FROM cards WHERE employee_id = ?", (employee_id,)
        )
        return await self._exec(
            """INSERT INTO cards (employee_id, generation, label, nonce, token_digest, created_at, expires_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (employee_id, generation, label, nonce, token_digest, ts(created_at), ts(expires_at)),
        )

    async def card(self, card_id: int) -> CardRecord | None:
        row = await self._row("SELECT * FROM cards WHERE id = ?", (card_id,))
        return None if row is None else _card(row)

    async def card_by_digest(self, token_digest: bytes) -> CardRecord | None:
        row = await self._row("SELECT * FROM cards WHERE token_digest = ?", (token_digest,))
        return None if row is None else _card(row)

    async def open_card(self, employee_id: int) -> CardRecord | None:
        """The employee's unrevoked card (possibly expired)."""
        row = await self._row("SELECT * FROM cards WHERE employee_id = ? AND revoked_at IS NULL", (employee_id,))
        return None if row is None else _card(row)

    async def cards(self, employee_id: int | None = None) -> list[Card]:
        rows = await self._rows(
            "SELECT * FROM cards WHERE ? IS NULL OR employee_id = ? ORDER BY employee_id, generation",
            (employee_id, employee_id),
        )
        return [_card(r).card for r in rows]

    async def cards_expiring(self, after: datetime, until: datetime) -> list[Card]:
        """Unrevoked cards still live at ``after`` that expire by ``until``, soonest first."""
        rows = await self._rows(
            """SELECT * FROM cards WHERE revoked_at IS NULL AND expires_at > ? AND expires_at <= ?
               ORDER BY expires_at, id""", (ts(after), ts(until)))
        return [_card(r).card for r in rows]

    async def revoke_card(self, card_id: int, at: datetime, reason: str) -> None:
        await self._exec("UPDATE cards SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
                         (ts(at), reason, card_id))

    async def set_card_expiry(self, card_id: int, expires_at: datetime) -> None:
        await self._exec("UPDATE cards SET expires_at = ? WHERE id = ?", (ts(expires_at), card_id))

