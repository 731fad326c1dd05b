"""Accounts: admins and employees who sign in, their sessions, one-time links, throttling, the audit trail.

No Starlette here; the web layer (``web/session.py``, ``web/auth_routes.py``) and the CLI call this.

Parameters, chosen for a phone that shows a QR at a trade show and a desktop that can revoke links:

- Sessions: a random 32-byte id in the cookie, its SHA-256 in ``sessions``. An admin session ends after
  30 minutes without a request or 12 hours after sign-in; an employee's after 8 hours idle or 7 days
  (a working day at a stand without signing in again; the service worker shows the cached QR meanwhile).
  ``last_seen_at`` is written at most once a minute. Signing in issues a new id (no fixation); signing out
  deletes the row; setting a password ends every session of that user.
- One-time links (invitation, password reset): 32 random bytes, SHA-256 stored, 72 hours, single use;
  issuing a new link retires the user's older unused ones.
- Throttling: failures are counted per typed email (known or not) and per client (HMAC of the IP with the
  server secret). After 5 failures within 15 minutes a key is refused for 30 s, doubling with every further
  failure up to 15 minutes, counted from its last failure. A refused attempt does not check the password.
  The message never says whether the email or the password was wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import audit as audit_trail
from . import auth, policy
from .models import Conflict, ContactcardError, EmployeeStatus, NotFound, Role, User, ValidationError
from .store import SessionRecord, Store, UserRecord

Clock = Callable[[], datetime]

INVITATION_LIFETIME = timedelta(hours=72)
FAILURE_WINDOW = timedelta(minutes=15)
FAILURE_THRESHOLD = 5
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)
TOUCH_EVERY = timedelta(minutes=1)


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
    """Wrong email or password, or a throttled key. ``retry_after`` is set when throttled."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LinkInvalid(ContactcardError):
    """An invitation or reset link that is unknown, used or expired."""


@dataclass(frozen=True)
class SignedIn:
    user: User
    session_token: str  # goes into the cookie, never stored
    csrf_token: str


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


# scrypt costs ~50 ms of CPU by design: it runs in a worker thread so that scans and every other request keep
# being served while a sign-in is checked (the event loop never waits for it).
async def _hash(password: str) -> str:
    return await asyncio.to_thread(auth.hash_password, password)


async def _verify(password: str, stored: str | None) -> bool:
    return await asyncio.to_thread(auth.verify_password, password, stored)


class Accounts:
    def __init__(self, store: Store, secret: bytes, clock: Clock, *, base_url: str = "") -> None:
        self._store = store
        self._secret = secret
        self.clock = clock
        self.base_url = base_url

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
            raise ValidationError(f"not an email address: {email!r}")
        password_hash = None if password is None else await _hash(password)
        now = self.clock()
        async with self._store.transaction():
            if await self._store.user_by_email(email) is not None:
                raise Conflict(f"a user with the email {email} already exists")
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
            raise NotFound(f"no employee {employee_id}")
        if employee.status is EmployeeStatus.DEPARTED:
            raise Conflict(f"{employee.email} has departed")
        now = self.clock()
        async with self._store.transaction():
            record = await self._store.user_by_employee(employee.id)
            if record is None:
                if await self._store.user_by_email(employee.email) is not None:
                    raise Conflict(f"a user with the email {employee.email} already exists")
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
            raise NotFound(f"no user {user_id}")
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
        keys = (auth.account_key(email), auth.client_key(self._secret, client_ip))
        wait = max([await self._throttled_for(key, now) for key in keys])
        actor = email if policy.is_email(email) else "(not an email)"
        if wait > 0:
            await self.audit(actor, "sign_in.throttled", "", None, {"client": keys[1], "retry_after": wait})
            raise SignInRefused("too many failed attempts; wait a little and try again", retry_after=wait)
        record = await self._store.user_by_email(email) if policy.is_email(email) else None
        ok = await _verify(password, record.password_hash if record else None)
        if record is None or not ok or not await self._may_sign_in(record):
            async with self._store.transaction():
                for key in keys:
                    await self._store.add_login_failure(key, now)
                await self._store.purge_login_failures(now - 2 * FAILURE_WINDOW)
                await audit_trail.write(self._store, now, actor, "sign_in.failed", "", None, {"client": keys[1]})
            raise SignInRefused("the email or password is not right")
        session_token, csrf = auth.new_token(), auth.new_token()
        user = record.user
        rehashed = await _hash(password) if record.password_hash and auth.needs_rehash(record.password_hash) else None
        async with self._store.transaction():
            await self._store.clear_login_failures(keys[0])
            if rehashed is not None:
                await self._store.set_password_hash(user.id, rehashed)
            await self._store.add_session(auth.token_hash(session_token), user.id, csrf, now)
            await self._store.delete_stale_sessions(now - LONGEST, now - LONGEST)
            await audit_trail.write(self._store, now, user.email, "sign_in", f"user:{user.id}", None,
                                    {"client": keys[1]})
        return SignedIn(user=user, session_token=session_token, csrf_token=csrf)

    async def _may_sign_in(self, record: UserRecord) -> bool:
        if record.disabled_at is not None or record.password_hash is None:
            return False
        if record.user.employee_id is not None:
            employee = await self._store.employee(record.user.employee_id)
            if employee is None or employee.status is EmployeeStatus.DEPARTED:
                return False
        return True

    async def _throttled_for(self, key: str, now: datetime) -> int:
        """Seconds this key must still wait (0: may try)."""
        failures = await self._store.login_failures(key, now - FAILURE_WINDOW)
        if failures and failures[-1] > now:
            # The clock stepped back: failures "in the future" count as made just now, so a step back never makes
            # a wait longer than the delay the key earned. Stored so, or every check would restart the wait until
            # the clock caught up with them.
            async with self._store.transaction():
                await self._store.clamp_login_failures(key, now)
            failures = [min(at, now) for at in failures]
        if len(failures) < FAILURE_THRESHOLD:
            return 0
        delay = min(FIRST_DELAY * 2 ** (len(failures) - FAILURE_THRESHOLD), MAX_DELAY)
        until = failures[-1] + delay
        return max(0, int((until - now).total_seconds() + 0.999)) if now < until else 0

    # --- sessions -----------------------------------------------------------------------------

    async def session(self, session_token: str) -> ActiveSession | None:
        """The live session for a cookie value, or None (expired sessions are deleted here)."""
        if not session_token or len(session_token) > 100:
            return None
        id_hash = auth.token_hash(session_token)
        found = await self._store.session(id_hash)
        if found is None:
            return None
        record = await self._store.user(found.user_id)
        now = self.clock()
        if record is None or not self._fresh(record.user, found, now) or not await self._may_sign_in(record):
            async with self._store.transaction():
                await self._store.delete_session(id_hash)
            return None
        if now - found.last_seen_at >= TOUCH_EVERY:
            async with self._store.transaction():
                await self._store.touch_session(id_hash, now)
        return ActiveSession(user=record.user, csrf_token=found.csrf_token, created_at=found.created_at)

    def _fresh(self, user: User, found: SessionRecord, now: datetime) -> bool:
        rule = SESSION_POLICY.get(user.role, SESSION_POLICY[Role.ADMIN])
        return now - found.last_seen_at < rule.idle and now - found.created_at < rule.absolute

    async def sign_out(self, session_token: str) -> None:
        id_hash = auth.token_hash(session_token)
        found = await self._store.session(id_hash)
        if found is None:
            return
        record = await self._store.user(found.user_id)
        async with self._store.transaction():
            await self._store.delete_session(id_hash)
            await audit_trail.write(self._store, self.clock(), record.user.email if record else "unknown",
                                    "sign_out", f"user:{found.user_id}", None, None)

