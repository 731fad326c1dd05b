"""Accounts: admins and employees who sign in, their sessions, one-time links, throttling, the audit trail.

No Starlette here; the web layer (``web/session.py``, ``web/auth_routes.py``) and the CLI call this.

Parameters, chosen for a phone that shows a QR at a trade show and a desktop that can revoke links:

- Sessions: a random 32-byte id in the cookie, its SHA-256 in ``sessions``. An admin session ends after
  30 minutes without a request or 12 hours after sign-in; an employee's after 8 hours idle or 7 days
  (a working day at a stand without signing in again; the service worker shows the cached QR meanwhile).
  ``last_seen_at`` is written at most once a minute; a clock that steps back never lengthens the idle limit.
  Signing in issues a new id (no fixation); signing out deletes the row; setting a password ends every session
  of that user.
- The session check of each request is answered from memory while nothing was committed since it was read
  (``SessionCache``): not by this process (the store's commit counter), nor by another, such as the CLI (the
  service's ``PRAGMA data_version`` check, one that started after the request arrived). So a signed-out,
  reset, disabled or departed user's session is refused by the very next request, as without the cache; time
  limits are checked against the clock on every request, and an entry is read again after ``SESSION_CACHE_TTL``
  whatever happened.
- One-time links (invitation, password reset): 32 random bytes, SHA-256 stored, 72 hours, single use;
  issuing a new link retires the user's older unused ones.
- Throttling: a failure counts against three keys: this client on this account (the pair), this client (a pseudonym
  of its address, of its /64 for IPv6, under a random key held only in memory: ``auth.client_key``), and the
  typed account (known or not, so throttling reveals nothing about which accounts exist). A key past its threshold
  within 15 minutes is refused for 30 s, doubling with every further failure up to 15 minutes, counted from its
  last failure; a refused attempt does not check the password. The message never says whether the email or the
  password was wrong.

  - The pair allows 5 failures. Only the client that fails is held back: a stranger can never lock the
    owner (or an admin) out of an account from another address.
  - The client allows 20 failures across all accounts: one password tried against many accounts.
  - The account never refuses anyone by itself. After 20 failures from all clients (many addresses guessing
    one password), every client gets one failure on it before its pair is held back, so the guessing slows to
    one try per client and delay while a client that has not failed still signs in at once.
  - A one-time link (``contactcard user reset``) always signs in, throttled or not: the last way in.
  - A clock that steps back never lengthens a wait (failures "in the future" count as now).

- Single sign-on (``sso``, OpenID Connect) signs in through ``sign_in_sso`` with the same throttle keys (the
  provider's email, or its subject without one), the same session and the same audit rows (``"via": "oidc"``).
  The account is the one linked to the provider's subject at an earlier sign-in, else the user with that email
  when the provider says the email is verified (then the subject is linked), else the active employee with that
  email (their user is created, without a password). Nobody else is ever created, and never an admin.
  The company's "SSO only" setting refuses employees' passwords; admins keep theirs (the way in when the
  provider is down or misconfigured). Such a session keeps the provider's ID token, sealed under the session id
  (``auth.seal``) in the session's row, and ``sign_out`` hands it back so that the browser can be signed out at
  the provider too (``sso``); it is never logged nor audited, and goes with the row however the session ends.

- Audit: an attempt that does not succeed is written with the actor ``anonymous`` (the typed name is never an
  actor), the account only when the address is one of ours, and the client's pseudonym. Refused attempts are
  counted per key and throttle period in ``sign_in_throttles``; only the first of each period goes into the
  append-only trail, so a flood of attempts adds a handful of rows, not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import audit as audit_trail
from . import auth, policy
from .models import Busy, Clock, Conflict, ContactcardError, EmployeeStatus, NotFound, Role, User, ValidationError
from .oidc import Identity
from .store import SessionRecord, Store, UserRecord

INVITATION_LIFETIME = timedelta(hours=72)
TOUCH_EVERY = timedelta(minutes=1)
TOUCH_PATIENCE = 0.1  # seconds the touch waits for a write lock held elsewhere before it is skipped
FAILURE_WINDOW = timedelta(minutes=15)
PAIR_THRESHOLD = 5  # failures of one client on one account
CLIENT_THRESHOLD = 20  # failures of one client across accounts (guessing one password for many accounts)
ACCOUNT_ALERT = 20  # failures on one account from all clients (many clients guessing one account's password)
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)
ANONYMOUS = "anonymous"  # the audit actor of every sign-in attempt that did not succeed
# A backstop only: a cached session is dropped as soon as anything is committed (see ``SessionCache``).
SESSION_CACHE_TTL = timedelta(seconds=10)
SESSION_CACHE_SIZE = 4096


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta


SESSION_POLICY: Mapping[str, SessionPolicy] = {
    Role.ADMIN: SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12)),
    Role.EMPLOYEE: SessionPolicy(idle=timedelta(hours=8), absolute=timedelta(days=7)),
}
LONGEST = max(p.absolute for p in SESSION_POLICY.values())


class SignInRefused(ContactcardError):
    """Wrong email or password, or a throttled key. ``retry_after`` is set when throttled.

    ``reason``: ``credentials`` (wrong email or password), ``throttled``, ``sso_only`` (an employee's password
    while the company signs in with SSO), ``unknown_user`` (SSO: no account here), ``email_unverified``
    (SSO: the provider has not verified the email), or the single sign-on flow's own (see ``sso``).
    """

    def __init__(self, message: str, retry_after: int | None = None, *, reason: str = "credentials") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = "throttled" if retry_after is not None else reason


class LinkInvalid(ContactcardError):
    """An invitation or reset link that is unknown, used or expired."""


@dataclass(frozen=True)
class ThrottleKeys:
    """What a sign-in attempt counts against: this client on this account, this client, this account."""

    pair: str
    client: str
    account: str

    @classmethod
    def of(cls, email: str, client_ip: str) -> ThrottleKeys:
        account, client = auth.account_key(email), auth.client_key(client_ip)
        return cls(pair=auth.pair_key(account, client), client=client, account=account)

    @property
    def counted(self) -> tuple[str, str, str]:
        return (self.pair, self.client, self.account)


@dataclass(frozen=True)
class Throttle:
    kind: str  # "pair" or "client"
    key: str
    until: datetime

    def seconds_left(self, now: datetime) -> int:
        return max(1, math.ceil((self.until - now).total_seconds()))


@dataclass(frozen=True)
class SignedIn:
    user: User
    session_token: str  # goes into the cookie, never stored
    csrf_token: str


@dataclass(frozen=True)
class ProviderSession:
    """What signing out at the identity provider needs of a session opened through single sign-on."""

    issuer: str
    id_token: str = field(repr=False)  # sent back as id_token_hint; never logged


@dataclass(frozen=True)
class ActiveSession:
    user: User
    csrf_token: str
    created_at: datetime


@dataclass(frozen=True)
class OneTimeLink:
    user: User
    token: str
    url: str
    purpose: str
    expires_at: datetime


@dataclass(frozen=True)
class _Known:
    """A live session as read at ``mark`` (``read_at`` on the clock): its row and what ``session`` answered."""

    mark: object
    read_at: datetime
    found: SessionRecord
    active: ActiveSession


class SessionCache:
    """Sessions as last read, valid while ``mark()`` returns the value they were read at.

    ``mark`` (the service's ``settled``) waits for a ``PRAGMA data_version`` check that started after the call
    and returns a value that changes with every commit of this process (but the scan writer's batches of
    events) or of another: so an entry is never older than the last commit anyone made before the request.
    """

    def __init__(self, mark: Callable[[], Awaitable[object]]) -> None:
        self.mark = mark
        self._known: dict[bytes, _Known] = {}
        self._mark: object = None

    def get(self, id_hash: bytes, mark: object, now: datetime) -> _Known | None:
        if mark != self._mark:
            self._known.clear()
            self._mark = mark
            return None
        known = self._known.get(id_hash)
        if known is None or not known.read_at <= now < known.read_at + SESSION_CACHE_TTL:
            return None
        return known

    def put(self, id_hash: bytes, known: _Known) -> None:
        if known.mark != self._mark:
            return  # something was committed while it was read: the next request reads again
        if len(self._known) >= SESSION_CACHE_SIZE:
            self._known.clear()
        self._known[id_hash] = known

    def drop(self, id_hash: bytes) -> None:
        self._known.pop(id_hash, None)


# scrypt costs ~50 ms of CPU by design: it runs in a worker thread so that scans and every other request keep
# being served while a sign-in is checked (the event loop never waits for it).
async def _hash(password: str) -> str:
    return await asyncio.to_thread(auth.hash_password, password)


async def _verify(password: str, stored: str | None) -> bool:
    return await asyncio.to_thread(auth.verify_password, password, stored)


class Accounts:
    """Sign-in and everything around it: users, sessions, one-time links, throttling, their audit rows.

    Built once per process over the service's store (the app's lifespan, ``cli.base.open_service``); the web
    layer reaches it as ``AppContext.accounts``. Changes made for someone else name their ``actor``.
    """

    def __init__(self, store: Store, clock: Clock, *, base_url: str = "",
                 settled: Callable[[], Awaitable[object]] | None = None) -> None:
        self._store = store
        self.clock = clock
        self.base_url = base_url
        # The server passes the service's ``settled``; without it (the CLI) every check reads the database.
        self._sessions = None if settled is None else SessionCache(settled)

    # --- audit --------------------------------------------------------------------------------

    async def audit(self, actor: str, action: str, target: str, before: dict[str, Any] | None,
                    after: dict[str, Any] | None) -> None:
        """Append one audit row in its own transaction (use ``audit.write`` inside an open one)."""
        async with self._store.transaction():
            await audit_trail.write(self._store, self.clock(), actor, action, target, before, after)

    # --- users --------------------------------------------------------------------------------

    async def user(self, user_id: int) -> User | None:
        record = await self._store.user(user_id)
        return None if record is None else record.user

    async def user_by_email(self, email: str) -> User | None:
        record = await self._store.user_by_email(email)
        return None if record is None else record.user

    async def user_for_employee(self, employee_id: int) -> User | None:
        record = await self._store.user_by_employee(employee_id)
        return None if record is None else record.user

    async def create_admin(self, email: str, *, password: str | None = None, actor: str) -> OneTimeLink | None:
        """A new admin; with no password, returns the one-time link to set one."""
        email = email.strip()
        if not policy.is_email(email) or len(email) > 254:
            raise ValidationError("not an email address: %(email)r", email=email)
        password_hash = None if password is None else await _hash(password)
        now = self.clock()
        async with self._store.transaction():
            if await self._store.user_by_email(email) is not None:
                raise Conflict("a user with the email %(email)s already exists", email=email)
            user_id = await self._store.add_user(email, Role.ADMIN, None, password_hash, now)
            await audit_trail.write(self._store, now, actor, "user.create", f"user:{user_id}", None,
                                    {"email": email, "role": Role.ADMIN, "password_set": password is not None})
            user = User(user_id, email, Role.ADMIN, None)
            return None if password is not None else await self._new_link(user, "invite", now, actor)

    async def invite_employee(self, employee_id: int, *, actor: str) -> OneTimeLink:
        """The one-time link for an employee to set a password; creates their user on first call.

        Called again for an employee who already has a password, it gives a reset link.
        """
        employee = await self._store.employee(employee_id)
        if employee is None:
            raise NotFound("no employee %(ref)r", ref=employee_id)
        if employee.status is EmployeeStatus.DEPARTED:
            raise Conflict("%(email)s has departed", email=employee.email)
        now = self.clock()
        async with self._store.transaction():
            record = await self._store.user_by_employee(employee.id)
            if record is None:
                if await self._store.user_by_email(employee.email) is not None:
                    raise Conflict("a user with the email %(email)s already exists", email=employee.email)
                user_id = await self._store.add_user(employee.email, Role.EMPLOYEE, employee.id, None, now)
                await audit_trail.write(self._store, now, actor, "user.create", f"user:{user_id}", None,
                                        {"email": employee.email, "role": Role.EMPLOYEE, "employee_id": employee.id})
                user = User(user_id, employee.email, Role.EMPLOYEE, employee.id)
                purpose = "invite"
            else:
                user = record.user
                purpose = "invite" if record.password_hash is None else "reset"
            return await self._new_link(user, purpose, now, actor)

    async def reset_link(self, user_id: int, *, actor: str) -> OneTimeLink:
        record = await self._store.user(user_id)
        if record is None:
            raise NotFound("no user %(id)s", id=user_id)
        now = self.clock()
        async with self._store.transaction():
            return await self._new_link(record.user, "reset", now, actor)

    async def _new_link(self, user: User, purpose: str, now: datetime, actor: str) -> OneTimeLink:
        token = auth.new_token()
        expires = now + INVITATION_LIFETIME
        await self._store.retire_invitations(user.id, now)
        await self._store.add_invitation(auth.token_hash(token), user.id, purpose, now, expires)
        await audit_trail.write(self._store, now, actor, f"user.{purpose}_link", f"user:{user.id}", None,
                                {"email": user.email, "expires_at": expires})
        return OneTimeLink(user=user, token=token, url=f"{self.base_url}/invite/{token}", purpose=purpose,
                           expires_at=expires)

    # --- one-time links -----------------------------------------------------------------------

    async def link_user(self, token: str) -> tuple[User, str]:
        """The user and purpose a link is for; LinkInvalid when unknown, used or expired."""
        if len(token) > 100:
            raise LinkInvalid("this link is not valid")
        found = await self._store.invitation(auth.token_hash(token))
        if found is None:
            raise LinkInvalid("this link is not valid")
        if found.used_at is not None:
            raise LinkInvalid("this link has already been used")
        if self.clock() >= found.expires_at:
            raise LinkInvalid("this link has expired; ask an administrator for a new one")
        record = await self._store.user(found.user_id)
        if record is None or record.disabled_at is not None:
            raise LinkInvalid("this link is not valid")
        return record.user, found.purpose

    async def accept_link(self, token: str, password: str) -> User:
        """Set the password through a one-time link; the link is spent and every old session ends."""
        auth.check_password(password)
        user, purpose = await self.link_user(token)
        password_hash = await _hash(password)
        now = self.clock()
        async with self._store.transaction():
            if not await self._store.use_invitation(auth.token_hash(token), now):
                raise LinkInvalid("this link has already been used")
            await self._store.set_password_hash(user.id, password_hash)
            await self._store.delete_user_sessions(user.id)
            await audit_trail.write(self._store, now, user.email, "user.password_set", f"user:{user.id}",
                                    None, {"via": purpose})
        return user

    # --- sign-in ------------------------------------------------------------------------------

    async def sign_in(self, email: str, password: str, client_ip: str) -> SignedIn:
        email = email.strip()[:254]
        now = self.clock()
        keys = ThrottleKeys.of(email, client_ip)
        record = await self._store.user_by_email(email) if policy.is_email(email) else None
        # The typed name is never an actor: it is unauthenticated input. The trail names the account only
        # when the address is one of ours, and the client only by its pseudonym.
        target = "" if record is None else f"user:{record.user.id}"
        await self._refuse_if_throttled(keys, target, now)
        ok = await _verify(password, record.password_hash if record else None)
        # An employee of a company that signs in with SSO is told so, whatever the password: this says that the
        # email is an employee's (on their business card anyway), never whether a password was right.
        if record is not None and record.user.role == Role.EMPLOYEE and await self._store.sso_only():
            await self._failed(keys, target, now, reason="sso_only")
            raise SignInRefused("employees sign in with single sign-on", reason="sso_only")
        if record is None or not ok or record.password_hash is None or not await self._active(record):
            await self._failed(keys, target, now)
            raise SignInRefused("the email or password is not right")
        rehashed = await _hash(password) if record.password_hash and auth.needs_rehash(record.password_hash) else None
        return await self._open_session(record.user, keys, now, rehashed=rehashed)

    async def _refuse_if_throttled(self, keys: ThrottleKeys, target: str, now: datetime) -> None:
        throttle = await self._throttle(keys, now)
        if throttle is not None:
            await self._note_throttled(throttle, target, keys, now)
            raise SignInRefused("too many failed attempts; wait a little and try again",
                                retry_after=throttle.seconds_left(now))

    async def _failed(self, keys: ThrottleKeys, target: str, now: datetime, **why: str) -> None:
        """Count a failed attempt against every key and audit it (``why``: how it came and why it failed)."""
        async with self._store.transaction():
            for key in keys.counted:
                await self._store.add_login_failure(key, now)
            await self._store.purge_login_failures(now - 2 * FAILURE_WINDOW)
            await self._store.purge_sign_in_throttles(now - FAILURE_WINDOW)
            await audit_trail.write(self._store, now, ANONYMOUS, "sign_in.failed", target, None,
                                    {"client": keys.client, **why})

    # --- single sign-on -----------------------------------------------------------------------

    async def sso_only(self) -> bool:
        return await self._store.sso_only()

    async def set_sso_only(self, enabled: bool, *, actor: str) -> None:
        """The company setting "SSO only": employees' passwords stop working (admins keep theirs).

        Turning it on also signs every employee out: a session opened with a password must not outlive the rule
        that refuses that password; they come back through the provider."""
        async with self._store.transaction():
            before = await self._store.sso_only()
            await self._store.set_sso_only(enabled)
            after: dict[str, object] = {"sso_only": enabled}
            if enabled and not before:
                after["employee_sessions_ended"] = await self._store.delete_employee_sessions()
            await audit_trail.write(self._store, self.clock(), actor, "company.sso_only", "company",
                                    {"sso_only": before}, after)

    async def refuse_if_throttled(self, client_ip: str) -> None:
        """Before a single sign-on answer is looked at: SignInRefused when this client is held back."""
        await self._refuse_if_throttled(ThrottleKeys.of("", client_ip), "", self.clock())

    async def sso_failed(self, client_ip: str, reason: str) -> None:
        """A single sign-on answer that failed before it named anyone (stale state, a token that fails a check)."""
        await self._failed(ThrottleKeys.of("", client_ip), "", self.clock(), via="oidc", reason=reason)

    async def sign_in_sso(self, identity: Identity, client_ip: str) -> SignedIn:
        """Sign in the account the provider's checked ID token names; SignInRefused when there is none here."""
        now = self.clock()
        keys = ThrottleKeys.of(identity.email or identity.subject, client_ip)
        await self._refuse_if_throttled(keys, "", now)
        record = await self._store.user_by_oidc(identity.issuer, identity.subject)
        reason = ""
        if record is None:
            record, reason = await self._match_email(identity, now)
        if record is not None and not reason and not await self._active(record):
            reason = "unknown_user"  # disabled or departed: no different from a stranger
        if record is None or reason:
            reason = reason or "unknown_user"
            await self._failed(keys, "" if record is None else f"user:{record.user.id}", now,
                               via="oidc", reason=reason)
            raise SignInRefused(f"single sign-on refused: {reason}", reason=reason)
        return await self._open_session(record.user, keys, now, via="oidc", identity=identity)

    async def _match_email(self, identity: Identity, now: datetime) -> tuple[UserRecord | None, str]:
        """The account for a first single sign-on, by verified email, with the subject linked to it."""
        email = identity.email
        if not policy.is_email(email):
            return None, "unknown_user"
        record = await self._store.user_by_email(email)
        employee = await self._store.employee_by_email(email) if record is None else None
        if record is None and (employee is None or employee.status is EmployeeStatus.DEPARTED):
            return None, "unknown_user"
        if not identity.email_verified:
            return record, "email_unverified"
        async with self._store.transaction():
            if record is None:
                assert employee is not None
                user_id = await self._store.add_user(employee.email, Role.EMPLOYEE, employee.id, None, now)
                await audit_trail.write(self._store, now, employee.email, "user.create", f"user:{user_id}", None,
                                        {"email": employee.email, "role": Role.EMPLOYEE,
                                         "employee_id": employee.id, "via": "oidc"})
                record = await self._store.user(user_id)
                assert record is not None
            if not await self._store.link_oidc(record.user.id, identity.issuer, identity.subject):
                # Already linked to another subject of this provider: an email reassigned at the provider
                # does not hand over the account.
                return record, "unknown_user"
            await audit_trail.write(self._store, now, record.user.email, "user.oidc_link", f"user:{record.user.id}",
                                    None, {"issuer": identity.issuer})
        return record, ""

    async def sign_in_with_link(self, token: str, password: str, client_ip: str) -> SignedIn:
        """Set the password through a one-time link and sign in, whatever the throttle says.

        The link itself proves who this is (an administrator issued it, e.g. ``contactcard user reset``), so
        a stranger who keeps an account throttled can never keep its owner out.
        """
        user = await self.accept_link(token, password)
        return await self._open_session(user, ThrottleKeys.of(user.email, client_ip), self.clock())

    async def _open_session(self, user: User, keys: ThrottleKeys, now: datetime, *,
                            rehashed: str | None = None, via: str | None = None,
                            identity: Identity | None = None) -> SignedIn:
        """A new session; one opened through single sign-on (``identity``) keeps the provider's ID token, sealed."""
        session_token = auth.new_token()
        async with self._store.transaction():
            await self._store.clear_login_failures(keys.pair)
            if rehashed is not None:
                await self._store.set_password_hash(user.id, rehashed)
            await self._store.add_session(
                auth.token_hash(session_token), user.id, now,
                oidc_issuer=None if identity is None else identity.issuer,
                id_token_sealed=None if identity is None else auth.seal(session_token, identity.id_token))
            await self._store.delete_stale_sessions(now - LONGEST, now - LONGEST)
            await audit_trail.write(self._store, now, user.email, "sign_in", f"user:{user.id}", None,
                                    {"client": keys.client, **({"via": via} if via else {})})
        return SignedIn(user=user, session_token=session_token,
                        csrf_token=auth.csrf_token(session_token))

    async def _active(self, record: UserRecord) -> bool:
        """Not disabled, and not a departed employee (a password or single sign-on may then open a session)."""
        if record.disabled_at is not None:
            return False
        if record.user.employee_id is not None:
            employee = await self._store.employee(record.user.employee_id)
            if employee is None or employee.status is EmployeeStatus.DEPARTED:
                return False
        return True

    # --- throttling ---------------------------------------------------------------------------

    async def _throttle(self, keys: ThrottleKeys, now: datetime) -> Throttle | None:
        """The throttle that holds this attempt back longest, or None when it may go ahead."""
        under_attack = len(await self._recent_failures(keys.account, now)) >= ACCOUNT_ALERT
        found = [t for t in (await self._throttled("pair", keys.pair, 1 if under_attack else PAIR_THRESHOLD, now),
                             await self._throttled("client", keys.client, CLIENT_THRESHOLD, now)) if t is not None]
        return max(found, key=lambda t: t.until) if found else None

    async def _throttled(self, kind: str, key: str, threshold: int, now: datetime) -> Throttle | None:
        failures = await self._recent_failures(key, now)
        if len(failures) < threshold:
            return None
        delay = min(FIRST_DELAY * 2 ** (len(failures) - threshold), MAX_DELAY)
        until = failures[-1] + delay
        return Throttle(kind, key, until) if now < until else None

    async def _recent_failures(self, key: str, now: datetime) -> list[datetime]:
        failures = await self._store.login_failures(key, now - FAILURE_WINDOW)
        if failures and failures[-1] > now:
            # The clock stepped back: failures "in the future" count as made just now, so a step back never makes
            # a wait longer than the delay the key earned. Stored so, or every check would restart the wait until
            # the clock caught up with them.
            async with self._store.transaction():
                await self._store.clamp_login_failures(key, now)
            failures = [min(at, now) for at in failures]
        return failures

    async def _note_throttled(self, throttle: Throttle, target: str, keys: ThrottleKeys, now: datetime) -> None:
        """Count a refused attempt; only the first of each throttle period goes into the audit trail."""
        async with self._store.transaction():
            if await self._store.count_sign_in_throttled(throttle.key, throttle.until) == 1:
                await audit_trail.write(self._store, now, ANONYMOUS, "sign_in.throttled", target, None,
                                        {"throttle": throttle.kind, "client": keys.client, "until": throttle.until})

    # --- sessions -----------------------------------------------------------------------------

    async def session(self, session_token: str) -> ActiveSession | None:
        """The live session for a cookie value, or None (expired sessions are deleted here).

        Answered from ``SessionCache`` while nothing was committed since the session was read; the time limits
        are checked against the clock either way, and a due ``last_seen_at`` update reads it again.
        """
        if not session_token or len(session_token) > 100:
            return None
        id_hash = auth.token_hash(session_token)
        cache = self._sessions
        mark = None if cache is None else await cache.mark()
        now = self.clock()
        if cache is not None:
            known = cache.get(id_hash, mark, now)
            if (known is not None and self._fresh(known.active.user, known.found, now)
                    and timedelta(0) <= now - known.found.last_seen_at < TOUCH_EVERY):
                return known.active
        found = await self._store.session(id_hash)
        if found is None:
            return None
        record = await self._store.user(found.user_id)
        if record is None or not self._fresh(record.user, found, now) or not await self._active(record):
            async with self._store.transaction():
                await self._store.delete_session(id_hash)
            return None
        if not timedelta(0) <= now - found.last_seen_at < TOUCH_EVERY:  # due, or "in the future" (see _fresh)
            # Best effort: with the write lock held elsewhere the page is answered anyway, not a 503 after the
            # usual patience; the touch only moves the idle limit on, and the next request tries it again.
            with contextlib.suppress(Busy):
                async with self._store.transaction(patience=TOUCH_PATIENCE):  # the commit moves the mark: the next
                    await self._store.touch_session(id_hash, now)  # request reads again
        active = ActiveSession(user=record.user, csrf_token=auth.csrf_token(session_token),
                               created_at=found.created_at)
        if cache is not None:
            cache.put(id_hash, _Known(mark, now, found, active))
        return active

    def _fresh(self, user: User, found: SessionRecord, now: datetime) -> bool:
        """Within both limits. A clock stepped back never lengthens the idle limit: a last request "in the
        future" counts as made now (and is written so). The absolute limit stays counted from the sign-in's
        time, so it does grow by the step (ending the session instead would sign everyone out at a step)."""
        rule = SESSION_POLICY.get(user.role, SESSION_POLICY[Role.ADMIN])
        return now - min(found.last_seen_at, now) < rule.idle and now - found.created_at < rule.absolute

    async def sign_out(self, session_token: str) -> ProviderSession | None:
        """End the session; for one opened through single sign-on, what signing out at the provider needs."""
        id_hash = auth.token_hash(session_token)
        if self._sessions is not None:
            self._sessions.drop(id_hash)  # the commit below would drop it too: this says so where it matters
        found = await self._store.session(id_hash)
        if found is None:
            return None
        record = await self._store.user(found.user_id)
        async with self._store.transaction():
            await self._store.delete_session(id_hash)
            await audit_trail.write(self._store, self.clock(), record.user.email if record else "unknown",
                                    "sign_out", f"user:{found.user_id}", None, None)
        if found.oidc_issuer is None or found.id_token_sealed is None:
            return None
        id_token = auth.unseal(session_token, found.id_token_sealed)
        return None if id_token is None else ProviderSession(found.oidc_issuer, id_token)

