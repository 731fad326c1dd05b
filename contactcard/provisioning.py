"""SCIM provisioning's rules, run by ``Service`` inside its transactions (``Service._change``: one ``now``, the
audit rows, the caches dropped): create, update and delete an employee the identity provider manages, and the
bearer tokens it uses. ``scim`` says how a SCIM User maps to an employee; ``web/scim.py`` serves the protocol.

- Every change is one audit row by the actor ``scim`` (``scim.user.create|update|delete``) holding the changed
  facts before and after: the profile, the status, the successor, userName/externalId/displayName/manager.
- Deactivation (``active`` false) or a DELETE deprovisions at once: the employee is departed, their live card is
  revoked with the reason "deprovisioned" and their sign-in sessions are deleted. The old link then introduces
  the successor, who is the manager the provider names (when the manager is a current employee) or one an admin
  chose; otherwise it routes to the company.
- Re-activation makes the employee active again and forgets the successor; the revoked card stays revoked (the
  old link routes to the company): an admin issues a new card.
- A DELETE keeps the employee row (its cards and scans are history) and hides the resource from SCIM (404).
- A userName is unique among the resources SCIM shows (compared case-insensitively; an employee the provider
  never wrote shows with userName = email); an employee's email is unique anyway (the store refuses a second).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from . import audit as audit_trail
from . import auth, scim
from . import webhooks as hooks
from .models import (
    Busy,
    Company,
    Conflict,
    Employee,
    EmployeeProfile,
    EmployeeStatus,
    NotFound,
    ScimError,
    ScimIdentity,
    ScimToken,
)
from .scim import ENTERPRISE, Wanted
from .store import Store

ACTOR = "scim"  # the audit trail's actor for every change a SCIM client makes
REVOKED_REASON = "deprovisioned"
TOKEN_PREFIX = "scim_"  # noqa: S105  (names what a token is for; not a secret)
TOUCH_EVERY = timedelta(minutes=1)  # a token's last use is written at most this often
KEEP_ERRORS = 20  # the latest errors kept for the settings page


class Change(Protocol):
    """What the service hands a use case inside its transaction (``service._Change``)."""

    @property
    def store(self) -> Store: ...

    @property
    def now(self) -> datetime: ...

    @property
    def actor(self) -> str: ...

    async def company(self) -> Company: ...

    async def audit(self, action: str, target: str, before: Mapping[str, Any] | None,
                    after: Mapping[str, Any] | None) -> None: ...

    async def emit(self, event_type: str, data: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class ScimUser:
    """An employee as SCIM sees them; ``identity`` is None for one the provider never wrote."""

    employee: Employee
    identity: ScimIdentity | None


@dataclass(frozen=True)
class ScimState:
    """What the settings page shows."""

    tokens: list[ScimToken]  # newest first, revoked ones included
    errors: list[ScimError]  # newest first
    managed: int  # employees the provider has written

    @property
    def live_tokens(self) -> list[ScimToken]:
        return [t for t in self.tokens if t.revoked_at is None]

    @property
    def last_request(self) -> datetime | None:
        return max((t.last_used_at for t in self.tokens if t.last_used_at is not None), default=None)


class UserNameTaken(Conflict):
    """Another resource has this userName."""


# --- reading ------------------------------------------------------------------------------------


async def users(store: Store) -> list[ScimUser]:
    """Every employee SCIM shows (not those it deleted), in id order."""
    identities = {i.employee_id: i for i in await store.scim_identities()}
    return [ScimUser(e, identities.get(e.id)) for e in sorted(await store.employees(), key=lambda e: e.id)
            if not _deleted(identities.get(e.id))]


async def user(store: Store, employee_id: int) -> ScimUser | None:
    employee = await store.employee(employee_id)
    identity = await store.scim_identity(employee_id)
    return None if employee is None or _deleted(identity) else ScimUser(employee, identity)


async def state(store: Store) -> ScimState:
    return ScimState(tokens=await store.scim_tokens(), errors=await store.scim_errors(KEEP_ERRORS),
                     managed=await store.count_scim_identities())


# --- changes (inside the service's transaction) ---------------------------------------------------


async def create(change: Change, wanted: Wanted, profile: EmployeeProfile) -> ScimUser:
    """``profile``: ``wanted.profile`` as the service checked it (against the company's policy too)."""
    await _check_user_name(change.store, wanted.user_name, None)
    employee = Employee(id=0, **dataclasses.asdict(profile), photo_sha=None, status=EmployeeStatus.ACTIVE,
                        successor_id=None, created_at=change.now)
    employee = dataclasses.replace(employee, id=await change.store.add_employee(employee))
    after = _facts(employee, wanted)
    if not wanted.active:  # provisioned disabled: departed from the start, nothing to revoke
        employee = dataclasses.replace(employee, status=EmployeeStatus.DEPARTED)
        await change.store.update_employee(employee)
        after["status"] = employee.status
    identity = ScimIdentity(employee.id, wanted.user_name, wanted.document, change.now, change.now, None)
    await change.store.save_scim_identity(identity)
    await change.audit("scim.user.create", f"employee:{employee.id}", None, after)
    return ScimUser(employee, identity)


async def update(change: Change, found: ScimUser, wanted: Wanted, profile: EmployeeProfile) -> ScimUser:
    """Replace the employee's provisioned state with ``wanted`` (a PUT, or a PATCH already applied)."""
    employee = found.employee
    await _check_user_name(change.store, wanted.user_name, employee.id)
    updated = dataclasses.replace(employee, **dataclasses.asdict(profile))
    previous = _old_wanted(found)
    before = _facts(employee, previous)
    extra: dict[str, Any] = {}
    if wanted.active and employee.status is EmployeeStatus.DEPARTED:
        updated = dataclasses.replace(updated, status=EmployeeStatus.ACTIVE, successor_id=None)  # card stays revoked
    elif not wanted.active and (employee.status is EmployeeStatus.ACTIVE or wanted.manager_id != previous.manager_id):
        # deactivated now, or a new manager named since: a successor an admin chose meanwhile stays otherwise
        successor = await _successor(change.store, employee, wanted.manager_id)
        updated = dataclasses.replace(updated, status=EmployeeStatus.DEPARTED, successor_id=successor)
        if employee.status is EmployeeStatus.ACTIVE:
            extra = await _end_everything(change, employee)
    await change.store.update_employee(updated)
    if extra:
        await _announce(change, updated, extra["revoked_card_id"])
    identity = ScimIdentity(employee.id, wanted.user_name, wanted.document,
                            found.identity.created_at if found.identity else employee.created_at, change.now, None)
    await change.store.save_scim_identity(identity)
    old, new = audit_trail.changed(before, {**_facts(updated, wanted), **extra})
    if new:
        await change.audit("scim.user.update", f"employee:{employee.id}", old, new)
    return ScimUser(updated, identity)


async def delete(change: Change, found: ScimUser, document: str) -> None:
    """Deprovision (when still active) and hide the resource from SCIM for good."""
    employee = found.employee
    after: dict[str, Any] = {"status": EmployeeStatus.DEPARTED, "scim_deleted": True}
    if employee.status is EmployeeStatus.ACTIVE:
        manager = _manager_of(document)
        successor = await _successor(change.store, employee, manager)
        departed = dataclasses.replace(employee, status=EmployeeStatus.DEPARTED, successor_id=successor)
        await change.store.update_employee(departed)
        after |= {"successor_id": successor, **await _end_everything(change, employee)}
        await _announce(change, departed, after["revoked_card_id"])
    user_name = found.identity.user_name if found.identity else employee.email
    created = found.identity.created_at if found.identity else employee.created_at
    await change.store.save_scim_identity(ScimIdentity(employee.id, user_name, document, created, change.now,
                                                       change.now))
    await change.audit("scim.user.delete", f"employee:{employee.id}",
                       {"status": employee.status, "user_name": user_name}, after)


# --- tokens ---------------------------------------------------------------------------------------


async def create_token(change: Change) -> str:
    """A new bearer token, returned once: only its SHA-256 is stored. Older tokens stay valid until revoked."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = await change.store.add_scim_token(auth.token_hash(token), change.now, change.actor)
    await change.audit("scim.token.create", f"scim_token:{token_id}", None, {"id": token_id})
    return token


async def revoke_tokens(change: Change, token_id: int | None) -> list[int]:
    """Revoke one live token, or (None) every live one; the ids revoked."""
    revoked = await change.store.revoke_scim_tokens(token_id, change.now)
    if token_id is not None and not revoked:
        raise NotFound("no live SCIM token %(id)s", id=token_id)
    for each in revoked:
        await change.audit("scim.token.revoke", f"scim_token:{each}", {"revoked_at": None},
                           {"revoked_at": change.now})
    return revoked


async def authenticate(store: Store, token: str, now: datetime) -> ScimToken | None:
    """The live token this is, or None; looked up by digest with a constant-time final check. A refused token
    writes nothing; an accepted one notes its use at most once a minute."""
    digest = auth.token_hash(token)
    found = await store.scim_token(digest)
    if found is None:
        return None
    record, stored = found
    if not hmac.compare_digest(stored, digest) or record.revoked_at is not None:
        return None
    if record.last_used_at is None or not timedelta(0) <= now - record.last_used_at < TOUCH_EVERY:
        with contextlib.suppress(Busy):  # the note of its use must not refuse a good token
            async with store.transaction():
                await store.touch_scim_token(record.id, now)
            record = dataclasses.replace(record, last_used_at=now)
    return record


async def note_error(store: Store, error: ScimError) -> None:
    async with store.transaction():
        await store.add_scim_error(error, KEEP_ERRORS)


# --- helpers --------------------------------------------------------------------------------------


def _deleted(identity: ScimIdentity | None) -> bool:
    return identity is not None and identity.deleted_at is not None


async def _check_user_name(store: Store, user_name: str, own: int | None) -> None:
    holder = await store.scim_identity_named(user_name)
    if holder is not None and holder.employee_id != own:
        raise UserNameTaken("userName %(name)s is taken", name=user_name)
    by_email = await store.employee_by_email(user_name)
    if by_email is not None and by_email.id != own and await store.scim_identity(by_email.id) is None:
        raise UserNameTaken("userName %(name)s is taken", name=user_name)


async def _successor(store: Store, employee: Employee, manager_id: int | None) -> int | None:
    """The manager when they are another current employee SCIM shows; else the successor already chosen."""
    if manager_id is not None and manager_id != employee.id:
        manager = await store.employee(manager_id)
        if manager is not None and manager.status is EmployeeStatus.ACTIVE \
                and not _deleted(await store.scim_identity(manager_id)):
            return manager.id
    return employee.successor_id


async def _end_everything(change: Change, employee: Employee) -> dict[str, Any]:
    """Revoke the live card and end the sign-in sessions, at once; the facts for the audit row."""
    open_card = await change.store.open_card(employee.id)
    if open_card is not None:
        await change.store.revoke_card(open_card.card.id, change.now, REVOKED_REASON)
    account = await change.store.user_by_employee(employee.id)
    sessions = 0
    if account is not None:
        sessions = await change.store.count_sessions(account.user.id)
        await change.store.delete_user_sessions(account.user.id)
    return {"revoked_card_id": None if open_card is None else open_card.card.id, "sessions_ended": sessions}


async def _announce(change: Change, departed: Employee, revoked_card_id: int | None) -> None:
    """The webhook event a departure in the console sends too (``employee.departed``), in the same transaction."""
    successor = None if departed.successor_id is None else await change.store.employee(departed.successor_id)
    await change.emit(hooks.EMPLOYEE_DEPARTED, {
        "employee": hooks.employee_data(departed),
        "successor": None if successor is None else hooks.employee_data(successor),
        "revoked_card_id": revoked_card_id})


def _manager_of(document: str) -> int | None:
    value = str(((json.loads(document).get(ENTERPRISE) or {}).get("manager") or {}).get("value") or "")
    return int(value) if value.isdigit() and len(value) < 19 else None


def _old_wanted(found: ScimUser) -> Wanted:
    """What SCIM showed before this change (for the audit row's "before")."""
    return scim.wanted(scim.current(found.employee, found.identity))


def _facts(employee: Employee, wanted: Wanted) -> dict[str, Any]:
    document = json.loads(wanted.document)
    return {**dataclasses.asdict(employee.profile), "status": employee.status, "successor_id": employee.successor_id,
            "user_name": wanted.user_name, "external_id": document.get("externalId"),
            "display_name": document.get("displayName"), "manager_id": wanted.manager_id}
