"""The company profile, its secret's check value, media, employees and channels."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ..models import (
    Channel,
    ChannelKind,
    Company,
    Employee,
)
from .base import StoreBase, _split, ts
from .records import _channel, _employee


class CompanyStore(StoreBase):
    # --- the secret's check value (see keycheck.py) -------------------------------------------

    async def secret_check(self) -> bytes | None:
        value = await self._scalar("SELECT value FROM secret_check WHERE id = 1")
        return None if value is None else bytes(value)

    async def set_secret_check(self, value: bytes) -> bytes:
        """Store the check value unless one is there already; return the one stored."""
        async with self.transaction():
            await self._exec("INSERT OR IGNORE INTO secret_check (id, value) VALUES (1, ?)", (value,))
        stored = await self.secret_check()
        assert stored is not None
        return stored

    async def sample_card_key(self) -> tuple[bytes, bytes] | None:
        """The newest card's (nonce, token digest): enough to tell whether a secret is the one it was keyed with."""
        row = await self._row("SELECT nonce, token_digest FROM cards ORDER BY id DESC LIMIT 1")
        return None if row is None else (bytes(row["nonce"]), bytes(row["token_digest"]))

    # --- company ------------------------------------------------------------------------------

    async def company(self) -> Company | None:
        row = await self._row("SELECT * FROM company WHERE id = 1")
        if row is None:
            return None
        channels = await self.channels(None)
        return Company(
            name=row["name"],
            name_en=row["name_en"],
            logo_sha=row["logo_sha"],
            brand_color=row["brand_color"],
            business_hours=row["business_hours"],
            business_hours_en=row["business_hours_en"],
            timezone=row["timezone"],
            default_card_days=row["default_card_days"],
            retention_days=row["retention_days"],
            allow_email_domains=_split(row["allow_email_domains"]),
            allow_phone_prefixes=_split(row["allow_phone_prefixes"]),
            allow_line_ids=_split(row["allow_line_ids"]),
            allow_line_works_domains=_split(row["allow_line_works_domains"]),
            allow_web_hosts=_split(row["allow_web_hosts"]),
            leads_enabled=bool(row["leads_enabled"]),
            preview_photo=bool(row["preview_photo"]),
            channels=tuple(channels),
        )

    async def save_company(self, company: Company) -> None:
        await self._exec(
            """INSERT INTO company (id, name, name_en, logo_sha, brand_color, business_hours, business_hours_en,
                   timezone, default_card_days, retention_days, allow_email_domains, allow_phone_prefixes,
                   allow_line_ids, allow_line_works_domains, allow_web_hosts, leads_enabled,
                   preview_photo)
               VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET name=excluded.name, name_en=excluded.name_en,
                   logo_sha=excluded.logo_sha, brand_color=excluded.brand_color,
                   business_hours=excluded.business_hours, business_hours_en=excluded.business_hours_en,
                   timezone=excluded.timezone, default_card_days=excluded.default_card_days,
                   retention_days=excluded.retention_days, allow_email_domains=excluded.allow_email_domains,
                   allow_phone_prefixes=excluded.allow_phone_prefixes, allow_line_ids=excluded.allow_line_ids,
                   allow_line_works_domains=excluded.allow_line_works_domains,
                   allow_web_hosts=excluded.allow_web_hosts, leads_enabled=excluded.leads_enabled,
                   preview_photo=excluded.preview_photo""",
            (
                company.name, company.name_en, company.logo_sha, company.brand_color, company.business_hours,
                company.business_hours_en, company.timezone, company.default_card_days, company.retention_days,
                "\n".join(company.allow_email_domains), "\n".join(company.allow_phone_prefixes),
                "\n".join(company.allow_line_ids), "\n".join(company.allow_line_works_domains),
                "\n".join(company.allow_web_hosts), int(company.leads_enabled),
                int(company.preview_photo),
            ),
        )

    # --- media --------------------------------------------------------------------------------

    async def put_media(self, data: bytes, content_type: str) -> str:
        sha = hashlib.sha256(data).hexdigest()
        await self._exec("INSERT OR IGNORE INTO media (sha, content_type, data) VALUES (?, ?, ?)",
                         (sha, content_type, data))
        return sha

    async def media(self, sha: str) -> tuple[bytes, str] | None:
        row = await self._row("SELECT data, content_type FROM media WHERE sha = ?", (sha,))
        return None if row is None else (bytes(row["data"]), str(row["content_type"]))

    # --- employees ----------------------------------------------------------------------------

    async def add_employee(self, employee: Employee) -> int:
        return await self._exec(
            """INSERT INTO employees (email, family_name, given_name, family_kana, given_kana, latin_name,
                   title, department, photo_sha, status, successor_id, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (employee.email, employee.family_name, employee.given_name, employee.family_kana,
             employee.given_kana, employee.latin_name, employee.title, employee.department,
             employee.photo_sha, employee.status.value, employee.successor_id, ts(employee.created_at)),
        )

    async def update_employee(self, employee: Employee) -> None:
        await self._exec(
            """UPDATE employees SET email=?, family_name=?, given_name=?, family_kana=?, given_kana=?,
                   latin_name=?, title=?, department=?, photo_sha=?, status=?, successor_id=? WHERE id=?""",
            (employee.email, employee.family_name, employee.given_name, employee.family_kana,
             employee.given_kana, employee.latin_name, employee.title, employee.department,
             employee.photo_sha, employee.status.value, employee.successor_id, employee.id),
        )

    async def employee(self, employee_id: int) -> Employee | None:
        row = await self._row("SELECT * FROM employees WHERE id = ?", (employee_id,))
        return None if row is None else _employee(row)

    async def employee_by_email(self, email: str) -> Employee | None:
        row = await self._row("SELECT * FROM employees WHERE email = ?", (email.strip(),))
        return None if row is None else _employee(row)

    async def employees(self) -> list[Employee]:
        return [_employee(r) for r in await self._rows("SELECT * FROM employees ORDER BY family_kana, family_name, id")]

    # --- channels -----------------------------------------------------------------------------

    async def channels(self, employee_id: int | None) -> list[Channel]:
        rows = await self._rows(
            "SELECT * FROM channels WHERE employee_id IS ? ORDER BY position, id", (employee_id,)
        )
        return [_channel(r) for r in rows]

    async def channel(self, channel_id: int) -> Channel | None:
        row = await self._row("SELECT * FROM channels WHERE id = ?", (channel_id,))
        return None if row is None else _channel(row)

    async def add_channel(self, employee_id: int | None, kind: ChannelKind, target: str, label: str) -> int:
        position = await self._scalar(
            "SELECT COALESCE(MAX(position), 0) + 1 FROM channels WHERE employee_id IS ?", (employee_id,)
        )
        return await self._exec(
            "INSERT INTO channels (employee_id, kind, target, label, position) VALUES (?, ?, ?, ?, ?)",
            (employee_id, kind.value, target, label, position),
        )

    async def remove_channel(self, channel_id: int) -> None:
        await self._exec("DELETE FROM channels WHERE id = ?", (channel_id,))

    async def set_channel_positions(self, ordered_ids: Iterable[int]) -> None:
        for position, channel_id in enumerate(ordered_ids, start=1):
            await self._exec("UPDATE channels SET position = ? WHERE id = ?", (position, channel_id))

