"""Single sign-on with the company's OpenID provider: the flow's state, its outcome, the settings page's status.

    started = await sso.start(next_url)           # redirect the browser to started.url, cookie started.browser_token
    signed_in = await sso.finish(cookie, query, client_ip)   # on the callback; SignInRefused(reason=...) otherwise
    form = await sso.end_session_form(ended)      # at sign-out: the form to post to the provider, or None

The flow's secrets stay on the server: ``start`` stores a request keyed by the SHA-256 of a random ``state``
with the ``nonce``, the PKCE verifier, where to go afterwards and the SHA-256 of a random browser token (an
HttpOnly cookie), for ``REQUEST_LIFETIME``. ``finish`` deletes the request before it looks at anything else, so
a ``state`` answers once: a replayed callback, one from another browser (no cookie or another one) or one older
than the lifetime is refused. Every refusal counts against the client's sign-in throttle and is audited
(``accounts``); the account and the session are ``accounts.sign_in_sso``'s.

Signing out (OpenID Connect RP-Initiated Logout 1.0): the session that ``accounts.sign_out`` ended was opened
through this provider, so the browser goes on to the provider's ``end_session_endpoint``, posting the session's ID
token as ``id_token_hint``, our client id, and our sign-in page as ``post_logout_redirect_uri`` (a form: the token
is never in a URL; or, for a provider that refuses the POST, the operator's ``get``: a redirect); otherwise, or
when the provider offers no sign-out, or its discovery fails or takes longer than ``SIGN_OUT_PATIENCE``, ``None``:
the browser goes to the sign-in page as after a password, and signing out never fails or waits on the provider.

Discovery's outcome (when it last worked, the last error and when) is kept in the database for the console.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn, TypeVar

from . import auth
from .accounts import Accounts, ProviderSession, SignedIn, SignInRefused
from .models import Clock
from .oidc import OidcClient, ProviderUnavailable, SignOutForm, TokenRejected, pkce_pair
from .store import Store

T = TypeVar("T")
REQUEST_LIFETIME = timedelta(minutes=10)
MAX_PARAM = 2048  # longer state/code values are not ours
# Seconds a sign-out waits for the provider's discovery document (cached an hour, so usually no wait at all).
SIGN_OUT_PATIENCE = 2.0


@dataclass(frozen=True)
class Started:
    url: str  # the provider's authorization endpoint with this sign-in's parameters
    browser_token: str  # for the cookie that ties the callback to this browser


@dataclass(frozen=True)
class SsoStatus:
    """What the settings page shows."""

    configured: bool
    issuer: str
    client_id: str
    sso_only: bool
    discovered_at: datetime | None  # discovery last worked
    error: str  # the last failure to discover or reach the provider ("" when there never was one)
    error_at: datetime | None

    @property
    def failing(self) -> bool:
        """The provider's last answer (or its absence) was a failure."""
        return self.error_at is not None and (self.discovered_at is None or self.error_at >= self.discovered_at)


class SingleSignOn:
    """The sign-in flow over one provider (``client`` None: not configured, every flow is refused)."""

    def __init__(self, store: Store, accounts: Accounts, client: OidcClient | None, clock: Clock, *,
                 name: str = "") -> None:
        self._store = store
        self._accounts = accounts
        self._client = client
        self.clock = clock
        self.name = name  # the provider's name on the sign-in button

    @property
    def configured(self) -> bool:
        return self._client is not None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def status(self) -> SsoStatus:
        noted = await self._store.sso_status()
        config = None if self._client is None else self._client.config
        return SsoStatus(configured=config is not None, issuer=config.issuer if config else "",
                         client_id=config.client_id if config else "", sso_only=noted.sso_only,
                         discovered_at=noted.discovered_at, error=noted.error, error_at=noted.error_at)

    async def start(self, next_url: str) -> Started:
        """A new sign-in: its request stored, the provider's URL to send the browser to."""
        client = self._require_client()
        state, nonce, browser = auth.new_token(), auth.new_token(), auth.new_token()
        verifier, challenge = pkce_pair()
        url = await self._noting(client.authorization_url(state=state, nonce=nonce, challenge=challenge))
        now = self.clock()
        async with self._store.transaction():
            await self._store.purge_oidc_requests(now - REQUEST_LIFETIME)
            await self._store.add_oidc_request(auth.token_hash(state), auth.token_hash(browser), nonce, verifier,
                                               next_url, now)
        return Started(url=url, browser_token=browser)

    async def finish(self, browser_token: str, params: dict[str, str], client_ip: str) -> tuple[SignedIn, str]:
        """The provider's answer (the callback's query): the session and where to go, or SignInRefused."""
        client = self._require_client()
        await self._accounts.refuse_if_throttled(client_ip)
        state, code = params.get("state", ""), params.get("code", "")
        request = None
        if 0 < len(state) <= MAX_PARAM:
            async with self._store.transaction():
                request = await self._store.take_oidc_request(auth.token_hash(state))
        now = self.clock()
        if (request is None or now - request.created_at >= REQUEST_LIFETIME or not browser_token
                or not auth.same(auth.token_hash(browser_token).hex(), request.browser_hash.hex())):
            await self._refuse(client_ip, "state")
        assert request is not None
        if "error" in params:  # the person cancelled, or the provider refused them
            await self._refuse(client_ip, "provider_error")
        if params.get("iss", client.config.issuer) != client.config.issuer:  # RFC 9207: an answer from another provider
            await self._refuse(client_ip, "state")
        if not 0 < len(code) <= MAX_PARAM:
            await self._refuse(client_ip, "token")
        try:
            identity = await self._noting(client.redeem(code, verifier=request.code_verifier, nonce=request.nonce))
        except TokenRejected as err:
            await self._refuse(client_ip, "token", detail=err.reason)
        return await self._accounts.sign_in_sso(identity, client_ip), request.next_url

    async def end_session_form(self, ended: ProviderSession) -> SignOutForm | None:
        """The form that signs the browser out at the provider too, or None (the sign-in page, as after a password)."""
        client = self._client
        if client is None or ended.issuer != client.config.issuer:  # SSO turned off or moved since the sign-in
            return None
        try:
            return await asyncio.wait_for(client.end_session_form(ended.id_token), SIGN_OUT_PATIENCE)
        except (ProviderUnavailable, TimeoutError) as err:
            error = str(err) or f"discovery took longer than {SIGN_OUT_PATIENCE:g} s at sign-out"
            async with self._store.transaction():
                await self._store.note_sso_discovery(self.clock(), error[:300])
            return None

    async def _refuse(self, client_ip: str, reason: str, *, detail: str = "") -> NoReturn:
        await self._accounts.sso_failed(client_ip, f"{reason}:{detail}" if detail else reason)
        raise SignInRefused(f"single sign-on refused: {reason}", reason=reason)

    def _require_client(self) -> OidcClient:
        if self._client is None:
            raise SignInRefused("single sign-on is not configured", reason="not_configured")
        return self._client

    async def _noting(self, call: Awaitable[T]) -> T:
        """Await a call to the provider, noting for the console whether it answered; SignInRefused when it did not."""
        try:
            result = await call
        except ProviderUnavailable as err:
            async with self._store.transaction():
                await self._store.note_sso_discovery(self.clock(), str(err)[:300])
            raise SignInRefused("the identity provider cannot be reached", reason="unavailable") from None
        async with self._store.transaction():
            await self._store.note_sso_discovery(self.clock(), "")
        return result
