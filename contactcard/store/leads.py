"""The company's lead inbox: contacts customers left on card pages (migration 9)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..models import Lead, LeadInput
from .base import StoreBase, parse_ts, ts

_COLUMNS = ("id, time, card_id, employee_id, name, organisation, email, phone, message, language, consent_version, "
            "consent_text")


class LeadStore(StoreBase):
    async def add_lead(self, at: datetime, card_id: int | None, employee_id: int | None, entry: LeadInput,
                       language: str, consent_version: str, consent_text: str, visitor_key: str,
                       form_digest: bytes) -> int | None:
        """Store a lead; None when this form (its digest) was stored already. Callers hold a transaction."""
        cur = await self._conn.execute(
            """INSERT INTO leads (time, card_id, employee_id, name, organisation, email, phone, message, language,
                   consent_version, consent_text, visitor_key, form_digest)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (form_digest) DO NOTHING""",
            (ts(at), card_id, employee_id, entry.name, entry.organisation, entry.email, entry.phone, entry.message,
             language, consent_version, consent_text, visitor_key, form_digest))
        return int(cur.lastrowid) if cur.rowcount == 1 and cur.lastrowid else None

    async def count_leads_since(self, since: datetime, visitor_key: str | None = None) -> int:
        """Leads stored at or after ``since``, all or one visitor's (per-visitor and company-wide limits)."""
        if visitor_key is None:
            return int(await self._scalar("SELECT COUNT(*) FROM leads WHERE time >= ?", (ts(since),)))
        return int(await self._scalar("SELECT COUNT(*) FROM leads WHERE visitor_key = ? AND time >= ?",
                                      (visitor_key, ts(since))))

    async def leads(self, *, limit: int, offset: int = 0) -> list[Lead]:
        rows = await self._rows(f"SELECT {_COLUMNS} FROM leads ORDER BY id DESC LIMIT ? OFFSET ?",  # noqa: S608
                                (limit, offset))
        return [_lead(r) for r in rows]

    async def count_leads(self) -> int:
        return int(await self._scalar("SELECT COUNT(*) FROM leads"))

    async def lead(self, lead_id: int) -> Lead | None:
        row = await self._row(f"SELECT {_COLUMNS} FROM leads WHERE id = ?", (lead_id,))  # noqa: S608
        return None if row is None else _lead(row)

    async def leads_mentioning(self, email: str) -> list[Lead]:
        """Leads given with this email address, or naming it in any of their text (a data-subject request)."""
        pattern = "%" + email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self._rows(
            f"""SELECT {_COLUMNS} FROM leads WHERE email = ? OR name LIKE ? ESCAPE '\\'
                    OR organisation LIKE ? ESCAPE '\\' OR phone LIKE ? ESCAPE '\\' OR message LIKE ? ESCAPE '\\'
                ORDER BY id DESC""",  # noqa: S608
            (email, pattern, pattern, pattern, pattern))
        return [_lead(r) for r in rows]

    async def delete_leads(self, ids: list[int]) -> int:
        """Delete these leads; returns how many were there. Callers hold a transaction."""
        deleted = 0
        for lead_id in ids:
            cur = await self._conn.execute("DELETE FROM leads WHERE id = ?", (lead_id,))
            deleted += cur.rowcount
        return deleted

    async def delete_leads_before(self, cutoff: datetime) -> int:
        """Delete leads stored before ``cutoff`` (the retention purge). Callers hold a transaction."""
        cur = await self._conn.execute("DELETE FROM leads WHERE time < ?", (ts(cutoff),))
        return cur.rowcount


def _lead(r: sqlite3.Row) -> Lead:
    return Lead(id=r["id"], time=parse_ts(r["time"]), card_id=r["card_id"], employee_id=r["employee_id"],
                name=r["name"], organisation=r["organisation"], email=r["email"], phone=r["phone"],
                message=r["message"], language=r["language"], consent_version=r["consent_version"],
                consent_text=r["consent_text"])
