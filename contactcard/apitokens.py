"""API tokens: create (shown once), list, revoke, and check the token of a request. No Starlette here.

A token is ``cc_`` and 43 URL-safe characters (256 random bits); the database keeps only its SHA-256, looked up
by that digest and confirmed with a constant-time comparison, so a copy of the database opens nothing. Each
token has a unique name (never reused: the audit trail's actor for its changes is ``api:NAME``), one scope
(``models.ApiScope``) and an expiry; a revoked or expired token is refused like an unknown one. Requests are
rate limited per token (``ratelimit``). Creating and revoking are audited with the acting admin or ``cli``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from . import audit as audit_trail
from .models import ApiScope, ApiToken, Clock, ContactcardError, NotFound, ValidationError
from .ratelimit import RateLimiter
from .store import Store

PREFIX = "cc_"
DEFAULT_DAYS = 90
MAX_DAYS = 3650
DEFAULT_RATE = 600  # requests a minute per token
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class TokenRefused(ContactcardError):
    """No token, or one that is unknown, expired or revoked (the message never says which)."""


class RateLimited(ContactcardError):
    """Past the token's rate: ``RateLimited("...%(seconds)s...", seconds=N)``, N being the Retry-After."""

    @property
    def retry_after(self) -> int:
        return int(str(self.message.values["seconds"]))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValidationError("a token name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
                              "or digit")
    return name


class ApiTokens:
    def __init__(self, store: Store, clock: Clock, *, rate_per_minute: int = DEFAULT_RATE) -> None:
        self._store = store
        self._clock = clock
        self._limiter = RateLimiter(rate_per_minute, clock)

    async def create(self, name: str, scope: ApiScope | str, *, days: int = DEFAULT_DAYS,
                     actor: str) -> tuple[ApiToken, str]:
        """A new token and its secret text, which exists nowhere else once this returns."""
        try:
            scope = ApiScope(scope)
        except ValueError:
            raise ValidationError("unknown scope %(scope)r; use read, write or scans", scope=scope) from None
        if not 1 <= days <= MAX_DAYS:
            raise ValidationError("days must be between 1 and %(most)d", most=MAX_DAYS)
        check_name(name)
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        async with self._store.transaction():
            token_id = await self._store.add_api_token(name, scope, _digest(secret), now, now + timedelta(days=days))
            await audit_trail.write(self._store, now, actor, "api_token.create", f"api_token:{token_id}", None,
                                    {"name": name, "scope": scope, "expires_at": now + timedelta(days=days)})
        token = await self._store.api_token(name)
        assert token is not None
        return token, secret

    async def tokens(self) -> list[ApiToken]:
        return await self._store.api_tokens()

    async def find(self, ref: str | int) -> ApiToken:
        """A token by name, or by id (an int)."""
        found = next((t for t in await self._store.api_tokens() if t.id == ref), None) if isinstance(ref, int) \
            else await self._store.api_token(ref)
        if found is None:
            raise NotFound("no API token %(ref)r", ref=ref)
        return found

    async def revoke(self, ref: str | int, *, actor: str) -> ApiToken:
        """Revoke at once: the token's next request is refused (401). Revoking twice changes nothing."""
        token = await self.find(ref)
        if token.revoked_at is None:
            async with self._store.transaction():
                now = self._clock()
                await self._store.revoke_api_token(token.id, now)
                await audit_trail.write(self._store, now, actor, "api_token.revoke", f"api_token:{token.id}",
                                        {"revoked_at": None}, {"name": token.name, "revoked_at": now})
        return await self.find(token.id)

    async def authenticate(self, secret: str | None) -> ApiToken:
        """The live token ``secret`` is; TokenRefused if none, RateLimited past its rate (nothing is done)."""
        if not secret or not secret.startswith(PREFIX) or len(secret) > 200:
            raise TokenRefused("a valid API token is required")
        digest = _digest(secret)
        found = await self._store.api_token_by_hash(digest)
        if found is None or not hmac.compare_digest(found[1], digest) or not found[0].is_live(self._clock()):
            raise TokenRefused("a valid API token is required")
        token = found[0]
        wait = self._limiter.take(token.id)
        if wait:
            raise RateLimited("too many requests for this token; retry in %(seconds)s s", seconds=wait)
        return token
