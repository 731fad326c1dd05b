"""Single sign-on: users' links to the provider's subjects, the sign-ins in flight, the company's "SSO only"
setting and the provider's last discovery outcome (migration 9)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .base import StoreBase, _opt_ts, parse_ts, ts
from .records import UserRecord, _user


@dataclass(frozen=True)
class OidcRequest:
    browser_hash: bytes
    nonce: str
    code_verifier: str
    next_url: str
    created_at: datetime


@dataclass(frozen=True)
class SsoNoted:
    sso_only: bool
    discovered_at: datetime | None
    error: str
    error_at: datetime | None


class SsoStore(StoreBase):
    async def user_by_oidc(self, issuer: str, subject: str) -> UserRecord | None:
        row = await self._row("SELECT * FROM users WHERE oidc_issuer = ? AND oidc_subject = ?", (issuer, subject))
        return None if row is None else _user(row)

    async def link_oidc(self, user_id: int, issuer: str, subject: str) -> bool:
        """Link a user to the provider's subject, unless already linked to another subject of that provider."""
        await self._exec(
            """UPDATE users SET oidc_issuer = ?, oidc_subject = ?
               WHERE id = ? AND (oidc_subject IS NULL OR oidc_issuer IS NOT ? OR oidc_subject = ?)""",
            (issuer, subject, user_id, issuer, subject))
        return bool(await self._scalar("SELECT changes()"))

    async def add_oidc_request(self, state_hash: bytes, browser_hash: bytes, nonce: str, code_verifier: str,
                               next_url: str, at: datetime) -> None:
        await self._exec(
            """INSERT INTO oidc_requests (state_hash, browser_hash, nonce, code_verifier, next_url, created_at)
               VALUES (?, ?, ?, ?, ?, ?)""", (state_hash, browser_hash, nonce, code_verifier, next_url, ts(at)))

    async def take_oidc_request(self, state_hash: bytes) -> OidcRequest | None:
        """The pending request for a state, deleted: a state is answered once."""
        row = await self._row("DELETE FROM oidc_requests WHERE state_hash = ? RETURNING *", (state_hash,))
        if row is None:
            return None
        return OidcRequest(browser_hash=row["browser_hash"], nonce=row["nonce"], code_verifier=row["code_verifier"],
                           next_url=row["next_url"], created_at=parse_ts(row["created_at"]))

    async def purge_oidc_requests(self, before: datetime) -> None:
        await self._exec("DELETE FROM oidc_requests WHERE created_at < ?", (ts(before),))

    async def sso_status(self) -> SsoNoted:
        row = await self._row("SELECT * FROM sso_settings WHERE id = 1")
        assert row is not None
        return SsoNoted(sso_only=bool(row["sso_only"]), discovered_at=_opt_ts(row["discovered_at"]),
                        error=row["error"], error_at=_opt_ts(row["error_at"]))

    async def sso_only(self) -> bool:
        return bool(await self._scalar("SELECT sso_only FROM sso_settings WHERE id = 1"))

    async def set_sso_only(self, enabled: bool) -> None:
        await self._exec("UPDATE sso_settings SET sso_only = ? WHERE id = 1", (int(enabled),))

    async def note_sso_discovery(self, at: datetime, error: str) -> None:
        """The provider answered (``error`` empty) or failed; the last error is kept after a success, with its time."""
        if error:
            await self._exec("UPDATE sso_settings SET error = ?, error_at = ? WHERE id = 1", (error, ts(at)))
        else:
            await self._exec("UPDATE sso_settings SET discovered_at = ? WHERE id = 1", (ts(at),))
