"""The use cases, called alike by the web, the CLI and the API. No Starlette here; the clock is injected."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import operator
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import audit as audit_trail
from . import csvexport, policy, provisioning, reports, tokens
from . import stats as analytics
from . import webhooks as hooks
from .brand import check_color
from .leads import Leads
from .models import (
    AuditEvent,
    Card,
    Channel,
    ChannelKind,
    Clock,
    Company,
    Conflict,
    Employee,
    EmployeeProfile,
    EmployeeStatus,
    IssuedCard,
    Message,
    NotFound,
    Outcome,
    ScanEvent,
    ScimError,
    ScimToken,
    ValidationError,
)
from .provisioning import ScimState, ScimUser
from .scim import Wanted
from .store import CardRecord, EventFilter, EventRow, Store
from .visitors import Visitor

MAX_TEXT = 200
MAX_CARD_DAYS = 3650
CARD_CACHE_SIZE = 10_000
EXPORT_PAGE = 5000  # rows per read while streaming an export
EXPORT_CHUNK = 10_000  # rows per piece of the scan log's CSV (about 2.5 MB of text)
# The dashboard's figures are reused for this long. Under load every scan batch commits, so a cache keyed by
# commits would never be hit while it matters; a few seconds is what an admin's "reload" can tell apart.
# The console's own changes (and another program's, once seen) drop it at once; see ``dashboard``.
DASHBOARD_TTL = timedelta(seconds=5)


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Resolution:
    """What a token leads to: the outcome to record and everything the page needs."""

    outcome: Outcome
    company: Company
    card: Card | None = None
    employee: Employee | None = None
    channels: tuple[Channel, ...] = ()
    successor: Employee | None = None
    successor_url: str | None = None

    @property
    def live(self) -> bool:
        return self.outcome is Outcome.VIEW


@dataclass(frozen=True)
class ScanCounts:
    today: int
    week: int  # the last 7 local days, today included
    month: int  # the last 30 local days, today included (the dashboard's ranking window)


@dataclass(frozen=True)
class _CachedCard:
    record: CardRecord
    employee: Employee
    channels: tuple[Channel, ...]
    # The live link's Resolution, made once for the company object it shows (the scan path asks per scan)
    view: list[Resolution | None] = dataclasses.field(default_factory=lambda: [None], compare=False)


@dataclass(frozen=True)
class _Change:
    """One use case's write, inside its transaction: the store, the one ``now`` it happens at, who makes it."""

    store: Store
    now: datetime
    actor: str

    async def company(self) -> Company:
        """The company as committed, not the service's cached copy: what a change is checked against."""
        return await self.store.company() or DEFAULT_COMPANY

    async def audit(self, action: str, target: str, before: Mapping[str, Any] | None,
                    after: Mapping[str, Any] | None) -> None:
        await audit_trail.write(self.store, self.now, self.actor, action, target, before, after)

    async def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        """Queue a webhook event in this change's transaction: it is delivered if, and only if, the change
        commits (the outbox; see store/webhooks.py)."""
        await self.store.enqueue_webhook(self.now, event_type, data)


DEFAULT_COMPANY = Company(
    name="Company", name_en="", logo_sha=None, brand_color="#06c755", business_hours="", business_hours_en="",
    timezone="Asia/Tokyo", default_card_days=90, retention_days=400, allow_email_domains=(),
    allow_phone_prefixes=(), allow_line_ids=(), allow_line_works_domains=(),
)


class Service:
    """The use cases: the one door the web, the CLI and the demo go through to read or change the company's data.

    Each write is one ``_change`` (transaction, audit rows, one ``now``, caches dropped); each mutator names its
    ``actor`` for the audit trail. It caches the company and resolved cards for the scan path and drops them when
    another connection commits (``PRAGMA data_version``). The store and the secret stay inside.
    """

    def __init__(self, store: Store, *, secret: bytes, base_url: str, clock: Clock = system_clock) -> None:
        self._store = store
        self._secret = secret  # keys card tokens; never leaves the service
        self.leads = Leads(store, clock, secret)  # the contact form's use cases (its token key is derived here)
        self.base_url = base_url
        self.clock = clock
        # The hot path reads these on every scan; they are dropped on every change made here and
        # whenever another connection (the CLI) commits, which PRAGMA data_version reveals.
        self._company: Company | None = None
        self._finished: tuple[tuple[str, str, str], dict[int, int]] | None = None  # see _finished_scans
        self._dashboard: tuple[datetime, reports.Dashboard] | None = None  # built at, figures; see dashboard
        self._invalidations = 0  # a dashboard built across an invalidate() is not kept
        self._cards: dict[bytes, _CachedCard] = {}
        self._seen_data_version = -1
        self._checker: asyncio.Task[None] | None = None  # runs data_version checks while anyone waits
        self._current: list[asyncio.Future[None]] = []  # waiting for the check now running (or about to)
        self._current_started = False
        self._next: list[asyncio.Future[None]] = []  # arrived after it started: waiting for the next one

    # --- cache --------------------------------------------------------------------------------

    def invalidate(self) -> None:
        self._company = None
        self._dashboard = None
        self._invalidations += 1
        self._cards.clear()

    async def _refresh(self, deadline: float | None) -> None:
        """Wait for a data_version check that started after this call; TimeoutError past ``deadline``.

        Checks are coalesced, but a request only trusts a check that started after it arrived: one already in
        flight may have read the version before another process committed a revoke that returned before this
        request was sent. So whoever arrives while a check runs waits for the next one, which starts as soon as
        the current one ends and serves them all: under load one round trip still serves many requests.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if self._checker is None:
            self._current, self._next = [waiter], []
            self._checker = loop.create_task(self._run_checks())
        elif not self._current_started:
            self._current.append(waiter)
        else:
            self._next.append(waiter)
        # Each waiter has its own future, so a request that gives up (deadline, cancellation) touches no other.
        timer = None if deadline is None else loop.call_at(deadline, _give_up, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()

    async def _run_checks(self) -> None:
        """Run checks back to back while anyone waits for one."""
        try:
            while self._current:
                self._current_started = True  # whoever comes now waits for the next check
                try:
                    version = await self._store.data_version()
                except Exception as exc:
                    _answer(self._current, exc)
                else:
                    self.data_changed(version)
                    _answer(self._current, None)
                self._current, self._next, self._current_started = self._next, [], False
        finally:
            for waiter in self._current + self._next:  # cancelled (shutdown): so are those still waiting
                waiter.cancel()
            self._current, self._next, self._checker = [], [], None

    async def settled(self, deadline: float | None = None) -> tuple[int, int]:
        """A mark of what has been committed: wait for a data_version check that started after this call, then
        return a value that differs from every one returned before any later commit, this process's (through
        ``Store.transaction``: all but the scan writer's batches of events) or another's (the CLI's)."""
        await self._refresh(deadline)
        return self._store.commits, self._invalidations

    # --- changes ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _change(self, actor: str) -> AsyncIterator[_Change]:
        """Every use case that writes does it in here: one transaction, one ``now`` for the change and its audit
        rows, and the caches dropped once it has committed (not on an error: then nothing changed)."""
        async with self._store.transaction():
            yield _Change(self._store, self.clock(), actor)
        self.invalidate()

    # --- company ------------------------------------------------------------------------------

    async def company(self) -> Company:
        if self._company is not None:
            return self._company
        epoch = self._invalidations
        found = await self._store.company() or DEFAULT_COMPANY
        # A general channel saved before the policy was tightened is never shown to a customer either.
        company = dataclasses.replace(found, channels=tuple(c for c in found.channels if _within_policy(found, c)))
        if epoch == self._invalidations:  # else read before a change it may not show: used once, not kept
            self._company = company
        return company

    async def is_configured(self) -> bool:
        """Whether a company profile has been saved (until then ``company()`` is the default)."""
        return await self._store.company() is not None

    async def schema_version(self) -> int:
        return await self._store.schema_version()

    async def database_writable(self, patience: float) -> bool:
        """Whether a write transaction can start within ``patience`` seconds (for the readiness probe)."""
        return await self._store.writable(patience)

    async def media(self, sha: str) -> tuple[bytes, str] | None:
        """A stored image (photo or logo) and its content type, by content address."""
        return await self._store.media(sha)

    async def save_company(self, company: Company, general: dict[ChannelKind, str] | None = None, *,
                           actor: str) -> Company:
        """Replace the profile; ``general`` replaces the company's general channel of each kind given."""
        _text(Message("company name"), company.name, required=True)
        _check_zone(company.timezone)
        company = dataclasses.replace(company, brand_color=check_color(company.brand_color))
        if not 1 <= company.default_card_days <= MAX_CARD_DAYS:
            raise ValidationError("default link lifetime must be 1 to %(most)d days", most=MAX_CARD_DAYS)
        if not 1 <= company.retention_days <= 3650:
            raise ValidationError("scan retention must be 1 to 3650 days")
        cleaned = {kind: policy.clean_target(kind, target) for kind, target in (general or {}).items()}
        for kind, target in cleaned.items():
            policy.check_policy(company, kind, target)
        async with self._change(actor) as change:
            previous = await change.company()
            await self._store.save_company(company)
            existing = await self._store.channels(None)
            for kind, target in cleaned.items():
                for ch in existing:
                    if ch.kind is kind:
                        await self._store.remove_channel(ch.id)
                await self._store.add_channel(None, kind, target, "")
            before, after = audit_trail.changed(_profile(previous), _profile(company))
            for kind, target in cleaned.items():
                before[f"channel.{kind.value}"] = next((c.target for c in existing if c.kind is kind), None)
                after[f"channel.{kind.value}"] = target
            await change.audit("company.save", "company", before, after)
        return await self.company()

    async def set_logo(self, png: bytes | None, *, actor: str) -> Company:
        """Store an already re-encoded logo (``images.logo_png``), or with None go back to the name."""
        async with self._change(actor) as change:
            company = await change.company()
            sha = None if png is None else await self._store.put_media(png, "image/png")
            await self._store.save_company(dataclasses.replace(company, logo_sha=sha))
            await change.audit("company.logo", "company", {"logo_sha": company.logo_sha}, {"logo_sha": sha})
        return await self.company()

    # --- employees ----------------------------------------------------------------------------

    async def add_employee(self, profile: EmployeeProfile, *, actor: str) -> Employee:
        profile = _checked_profile(profile)
        async with self._change(actor) as change:
            employee = Employee(id=0, **dataclasses.asdict(profile), photo_sha=None, status=EmployeeStatus.ACTIVE,
                                successor_id=None, created_at=change.now)
            _check_printed_text(await change.company(), employee)
            employee = dataclasses.replace(employee, id=await self._store.add_employee(employee))
            await change.audit("employee.add", f"employee:{employee.id}", None, _profile(employee))
        return employee

    async def find_employee(self, ref: str | int) -> Employee:
        """An employee by id or email."""
        found: Employee | None
        if isinstance(ref, int) or str(ref).isdigit():
            found = await self._store.employee(int(ref))
        else:
            found = await self._store.employee_by_email(str(ref))
        if found is None:
            raise NotFound("no employee %(ref)r", ref=ref)
        return found

    async def employees(self) -> list[Employee]:
        return await self._store.employees()

    async def employee(self, employee_id: int) -> Employee | None:
        return await self._store.employee(employee_id)

    async def depart(self, employee_ref: str | int, successor_ref: str | int | None = None, *,
                     actor: str) -> Employee:
        """Mark an employee as departed and revoke their link; the link then introduces the successor."""
        employee = await self.find_employee(employee_ref)
        successor = None if successor_ref is None else await self.find_employee(successor_ref)
        if employee.status is EmployeeStatus.DEPARTED:
            raise Conflict("%(email)s has already departed", email=employee.email)
        _check_successor(employee, successor)
        updated = dataclasses.replace(employee, status=EmployeeStatus.DEPARTED,
                                      successor_id=None if successor is None else successor.id)
        async with self._change(actor) as change:
            await self._store.update_employee(updated)
            open_card = await self._store.open_card(employee.id)
            if open_card is not None:
                await self._store.revoke_card(open_card.card.id, change.now, "departed")
            await change.audit(
                "employee.depart", f"employee:{employee.id}",
                {"status": employee.status, "successor_id": employee.successor_id},
                {"status": updated.status, "successor_id": updated.successor_id,
                 "revoked_card_id": None if open_card is None else open_card.card.id},
            )
            await change.emit(hooks.EMPLOYEE_DEPARTED, {
                "employee": hooks.employee_data(updated),
                "successor": None if successor is None else hooks.employee_data(successor),
                "revoked_card_id": None if open_card is None else open_card.card.id})
        return updated

    async def name_successor(self, employee_ref: str | int, successor_ref: str | int | None, *,
                             actor: str) -> Employee:
        """Choose (or clear, None) whom a departed employee's old link introduces: e.g. after the identity
        provider deactivated them over SCIM without naming a manager."""
        employee = await self.find_employee(employee_ref)
        successor = None if successor_ref is None else await self.find_employee(successor_ref)
        if employee.status is not EmployeeStatus.DEPARTED:
            raise Conflict("%(email)s has not departed", email=employee.email)
        _check_successor(employee, successor)
        updated = dataclasses.replace(employee, successor_id=None if successor is None else successor.id)
        async with self._change(actor) as change:
            await self._store.update_employee(updated)
            await change.audit("employee.successor", f"employee:{employee.id}",
                               {"successor_id": employee.successor_id}, {"successor_id": updated.successor_id})
        return updated

    async def edit_employee(self, employee_ref: str | int, profile: EmployeeProfile, *, actor: str) -> Employee:
        """Replace the employee's profile (names, readings, email, title, department)."""
        employee = await self.find_employee(employee_ref)
        fields = dataclasses.asdict(_checked_profile(profile))
        updated = dataclasses.replace(employee, **fields)
        before, after = audit_trail.changed(dataclasses.asdict(employee.profile), fields)
        async with self._change(actor) as change:
            _check_printed_text(await change.company(), updated)
            await self._store.update_employee(updated)
            if after:
                await change.audit("employee.update", f"employee:{employee.id}", before, after)
        return updated

    async def set_photo(self, employee_ref: str | int, jpeg: bytes, *, actor: str) -> Employee:
        """Store an already re-encoded photo (``images.photo_jpeg``) and point the employee at it."""
        employee = await self.find_employee(employee_ref)
        async with self._change(actor) as change:
            sha = await self._store.put_media(jpeg, "image/jpeg")
            updated = dataclasses.replace(employee, photo_sha=sha)
            await self._store.update_employee(updated)
            await change.audit("employee.photo", f"employee:{employee.id}", {"photo_sha": employee.photo_sha},
                               {"photo_sha": sha})
        return updated

    # --- channels -----------------------------------------------------------------------------

    async def add_channel(self, employee_ref: str | int | None, kind: ChannelKind | str, target: str,
                          label: str = "", *, actor: str) -> Channel:
        kind = _kind(kind)
        owner = None if employee_ref is None else await self.find_employee(employee_ref)
        cleaned = policy.clean_target(kind, target)
        label = _text(Message("label"), label)
        async with self._change(actor) as change:
            # the policy as committed: another process (the CLI) may have tightened it since the cache was filled
            company = await change.company()
            policy.check_policy(company, kind, cleaned)
            policy.check_text(company, Message("label"), label)
            channel_id = await self._store.add_channel(None if owner is None else owner.id, kind, cleaned, label)
            await change.audit("channel.add", f"channel:{channel_id}", None,
                               {"employee_id": None if owner is None else owner.id, "kind": kind,
                                "target": cleaned, "label": label})
        channel = await self._store.channel(channel_id)
        assert channel is not None
        return channel

    async def channel(self, channel_id: int) -> Channel | None:
        return await self._store.channel(channel_id)

    async def channels(self, employee_ref: str | int | None) -> list[Channel]:
        owner = None if employee_ref is None else await self.find_employee(employee_ref)
        return await self._store.channels(None if owner is None else owner.id)

    async def remove_channel(self, channel_id: int, employee_ref: str | int | None = None, *,
                             actor: str) -> Channel:
        channel = await self._store.channel(channel_id)
        if channel is None:
            raise NotFound("no channel %(id)s", id=channel_id)
        if employee_ref is not None and channel.employee_id != (await self.find_employee(employee_ref)).id:
            raise NotFound("no channel %(id)s for that employee", id=channel_id)
        async with self._change(actor) as change:
            await self._store.remove_channel(channel_id)
            await change.audit("channel.remove", f"channel:{channel_id}", _profile(channel), None)
        return channel

    async def move_channel(self, channel_id: int, employee_ref: str | int | None, step: int, *,
                           actor: str) -> list[Channel]:
        """Move a channel ``step`` places (-1 up, +1 down) among its owner's (None: the company's general ones)."""
        owner = None if employee_ref is None else (await self.find_employee(employee_ref)).id
        channels = await self._store.channels(owner)
        index = next((i for i, c in enumerate(channels) if c.id == channel_id), None)
        if index is None:
            raise NotFound("no channel %(id)s there", id=channel_id)
        target = min(max(index + step, 0), len(channels) - 1)
        if target != index:
            order = [c.id for c in channels]
            order.insert(target, order.pop(index))
            async with self._change(actor) as change:
                await self._store.set_channel_positions(order)
                await change.audit("channel.reorder", f"employee:{owner}" if owner is not None else "company",
                                   {"order": [c.id for c in channels]}, {"order": order})
        return await self._store.channels(owner)

    # --- cards --------------------------------------------------------------------------------

    def _issued(self, record: CardRecord) -> IssuedCard:
        token = tokens.token_for(self._secret, record.nonce)
        return IssuedCard(card=record.card, token=token, url=f"{self.base_url}/c/{token}")

    async def issue_card(self, employee_ref: str | int, *, days: int | None = None, label: str = "",
                         actor: str) -> IssuedCard:
        employee = await self.find_employee(employee_ref)
        if employee.status is EmployeeStatus.DEPARTED:
            raise Conflict("%(email)s has departed; issue a card to their successor instead", email=employee.email)
        if await self._store.open_card(employee.id) is not None:
            raise Conflict("%(email)s already has a card; use rotate for a fresh link", email=employee.email)
        return await self._new_card(employee, days, label, revoke=None, actor=actor)

    async def rotate_card(self, employee_ref: str | int, *, days: int | None = None,
                          actor: str) -> IssuedCard:
        """A fresh link; the old one stops working at once (it then shows the 410 page)."""
        employee = await self.find_employee(employee_ref)
        if employee.status is EmployeeStatus.DEPARTED:
            raise Conflict("%(email)s has departed", email=employee.email)
        current = await self._store.open_card(employee.id)
        if current is None:
            raise Conflict("%(email)s has no card to rotate; issue one", email=employee.email)
        return await self._new_card(employee, days, current.card.label, revoke=current.card, actor=actor)

    async def _new_card(self, employee: Employee, days: int | None, label: str, revoke: Card | None, *,
                        actor: str) -> IssuedCard:
        nonce = tokens.new_nonce()
        async with self._change(actor) as change:
            lifetime = _days((await change.company()).default_card_days if days is None else days)
            expires_at = change.now + timedelta(days=lifetime)
            if revoke is not None:
                await self._store.revoke_card(revoke.id, change.now, "rotated")
            card_id = await self._store.insert_card(employee.id, _text(Message("label"), label), nonce,
                                                    tokens.digest(tokens.token_for(self._secret, nonce)),
                                                    change.now, expires_at)
            await change.audit(
                "card.issue" if revoke is None else "card.rotate", f"card:{card_id}",
                None if revoke is None else {"card_id": revoke.id, "generation": revoke.generation},
                {"card_id": card_id, "employee_id": employee.id, "expires_at": expires_at},
            )
            await change.emit(hooks.CARD_ISSUED if revoke is None else hooks.CARD_ROTATED, {
                "card_id": card_id, "employee": hooks.employee_data(employee), "expires_at": hooks.iso(expires_at),
                **({} if revoke is None else {"replaced_card_id": revoke.id})})
        record = await self._store.card(card_id)
        assert record is not None
        return self._issued(record)

    async def revoke_card(self, employee_ref: str | int, *, actor: str) -> Card:
        employee = await self.find_employee(employee_ref)
        current = await self._store.open_card(employee.id)
        if current is None:
            raise Conflict("%(email)s has no live card", email=employee.email)
        async with self._change(actor) as change:
            await self._store.revoke_card(current.card.id, change.now, "revoked")
            await change.audit("card.revoke", f"card:{current.card.id}", {"revoked_at": None},
                               {"revoked_at": change.now, "reason": "revoked"})
            await change.emit(hooks.CARD_REVOKED, {"card_id": current.card.id,
                                                   "employee": hooks.employee_data(employee)})
        record = await self._store.card(current.card.id)
        assert record is not None
        return record.card

    async def extend_card(self, employee_ref: str | int, *, days: int | None = None,
                          actor: str) -> IssuedCard:
        """Push the expiry to ``days`` from now (an expired, unrevoked link comes back to life)."""
        employee = await self.find_employee(employee_ref)
        current = await self._store.open_card(employee.id)
        if current is None:
            raise Conflict("%(email)s has no card to extend", email=employee.email)
        async with self._change(actor) as change:
            lifetime = _days((await change.company()).default_card_days if days is None else days)
            expires_at = change.now + timedelta(days=lifetime)
            await self._store.set_card_expiry(current.card.id, expires_at)
            await change.audit("card.extend", f"card:{current.card.id}", {"expires_at": current.card.expires_at},
                               {"expires_at": expires_at})
            await change.emit(hooks.CARD_EXTENDED, _extended(current.card, employee, expires_at))
        record = await self._store.card(current.card.id)
        assert record is not None
        return self._issued(record)

    async def extend_expiring(self, *, days: int | None = None, actor: str) -> int:
        """Extend to ``days`` from now (default: the company's lifetime) every live link that expires within the
        company's notice (``expiring_cards``), in one transaction with an audit row each; how many were extended.
        A link is never shortened: one already expiring later than that is left as it is."""
        extended = 0
        async with self._change(actor) as change:
            company = await change.company()
            expires_at = change.now + timedelta(days=_days(company.default_card_days if days is None else days))
            for due in await reports.expiring_cards(self._store, change.now, company.expiry_notice):
                card = due.card
                if card.expires_at < expires_at:
                    await self._store.set_card_expiry(card.id, expires_at)
                    await change.audit("card.extend", f"card:{card.id}", {"expires_at": card.expires_at},
                                       {"expires_at": expires_at})
                    await change.emit(hooks.CARD_EXTENDED, _extended(card, due.employee, expires_at))
                    extended += 1
        return extended

    async def scan_counts(self, employee_id: int) -> ScanCounts:
        """The employee's own scans (``SCAN_OUTCOMES``, people only) today, over the last 7 and the last 30 local
        days (today included) in the company's time zone: read from their daily totals (today's row is kept live
        as scans are stored), so they are the console's figures for them and cost the same whatever the history."""
        days = (await self.stats(employee_id=employee_id, days=30)).days
        return ScanCounts(today=days[-1].scans, week=sum(d.scans for d in days[-7:]),
                          month=sum(d.scans for d in days))

    async def current_card(self, employee_ref: str | int) -> IssuedCard | None:
        employee = await self.find_employee(employee_ref)
        record = await self._store.open_card(employee.id)
        return None if record is None else self._issued(record)

    async def latest_card(self, employee_id: int) -> Card | None:
        """The employee's newest card whatever its state (revoked, expired or live), or None if they never had one:
        what /me explains when there is no link to show."""
        return max(await self._store.cards(employee_id), key=operator.attrgetter("generation"), default=None)

    async def card(self, card_id: int) -> Card | None:
        record = await self._store.card(card_id)
        return None if record is None else record.card

    async def live_cards(self) -> dict[int, Card]:
        """Each employee's live card (unrevoked, unexpired), by employee id."""
        now = self.clock()
        return {card.employee_id: card for card in await self._store.cards() if card.is_live(now)}

    async def expiring_cards(self, within: timedelta | None = None) -> list[reports.ExpiringCard]:
        """Live links that expire within ``within`` (default: the company's notice, ``Company.expiry_notice``),
        soonest first."""
        company = await self.company()
        return await reports.expiring_cards(self._store, self.clock(), company.expiry_notice if within is None
                                            else within)

    async def cards(self, employee_ref: str | int | None = None) -> list[IssuedCard]:
        """Every card with its link (links of revoked cards no longer open anything)."""
        employee_id = None if employee_ref is None else (await self.find_employee(employee_ref)).id
        out = []
        for card in await self._store.cards(employee_id):
            record = await self._store.card(card.id)
            assert record is not None
            out.append(self._issued(record))
        return out

    # --- reports, analytics and the audit trail ------------------------------------------------

    async def dashboard(self) -> reports.Dashboard:
        """The dashboard's figures, at most ``DASHBOARD_TTL`` old: an admin holding reload down (or several
        admins) costs one build per few seconds, not one per load, so the scans answered meanwhile keep their
        pace. Scans committed since show on the first load after that; changes made here show at once."""
        now = self.clock()
        cached = self._dashboard
        if cached is not None and cached[0] <= now < cached[0] + DASHBOARD_TTL:
            return cached[1]
        invalidations = self._invalidations
        data = await reports.dashboard(self._store, await self.company(), now, finished_scans=self._finished_scans)
        if invalidations == self._invalidations:
            self._dashboard = (now, data)
        return data

    async def _finished_scans(self, first_day: str, last_day: str) -> dict[int, int]:
        """Employees' scans over finished days, kept until the days or the roll-up's progress move: a finished
        day's totals change only when the roll-up counts it (or by a scan still in flight at midnight, which
        then shows on the next day's ranking)."""
        key = (first_day, last_day, await self._store.totals_through())
        if self._finished is None or self._finished[0] != key:
            self._finished = (key, await self._store.employee_scans(first_day, last_day))
        return self._finished[1]

    async def scan_log(self, flt: reports.ScanFilter, *, limit: int, before_id: int | None = None,
                       after_id: int | None = None) -> list[EventRow]:
        """A page of the scan log, newest first; ``before_id``/``after_id`` page older/newer (keyset)."""
        return await reports.scan_log(self._store, await self.company(), flt, limit=limit, before_id=before_id,
                                      after_id=after_id)

    async def scan_log_page(self, flt: reports.ScanFilter, *, limit: int, before_id: int | None = None,
                            after_id: int | None = None) -> reports.LogPage:
        """A keyset page of the scan log with whether there are newer and older pages (console and API)."""
        return await reports.scan_log_page(self._store, await self.company(), flt, limit=limit, before_id=before_id,
                                           after_id=after_id)

    async def scan_csv(self, flt: reports.ScanFilter) -> AsyncGenerator[tuple[str, int], None]:
        """The scan log's CSV lines (``csvexport.EVENT_HEADER``; no header) and how many, newest first,
        ``EXPORT_CHUNK`` rows a piece. Each piece is built whole by SQLite on a reader thread (see
        ``Store.export_csv``) and the next one is read while this one is sent, so the event loop only passes
        text on."""
        pinned = await self._pinned(flt)
        times = await self._store.event_times()
        if times is None:
            return
        zone = ZoneInfo((await self.company()).timezone)
        start = max(times[0], pinned.since) if pinned.since else times[0]
        end = min(times[1], pinned.until) if pinned.until else times[1]
        offsets = csvexport.utc_offsets(zone, start, end + timedelta(seconds=1))
        local = csvexport.LocalMinutes(zone)

        def read(below: int | None) -> asyncio.Future[tuple[int | None, str, int]]:
            return asyncio.ensure_future(self._store.export_csv(
                pinned, before_id=below, limit=EXPORT_CHUNK, formula_starts=csvexport.FORMULA_STARTS,
                offsets=offsets, local=local))

        reading = read(None)
        try:
            while True:
                last_id, text, rows = await reading
                if not rows:
                    return
                if last_id is not None:  # a full piece: read the next one while this one goes out
                    reading = read(last_id)
                yield text, rows
                if last_id is None:
                    return
        finally:
            reading.cancel()  # the download was abandoned: no further piece is read (a running read finishes)

    async def _pinned(self, flt: reports.ScanFilter) -> EventFilter:
        """The store's filter, limited to the events stored now: rows written during an export never join it,
        whatever time they carry."""
        company = await self.company()
        return dataclasses.replace(flt.events(company.timezone), max_id=await self._store.newest_event_id())

    async def count_scan_log(self, flt: reports.ScanFilter) -> int:
        return await reports.count_scan_log(self._store, await self.company(), flt)

    async def stats(self, *, employee_id: int | None = None, card_id: int | None = None,
                    days: int = 30) -> analytics.Stats:
        return await analytics.stats(self._store, await self.company(), self.clock(), employee_id=employee_id,
                                 card_id=card_id, days=days)

    async def purge(self, *, paced: bool = False) -> int:
        """Roll up the backlog, then delete events and leads older than the retention; returns events deleted. ``paced``
        (the server's daily job) rests as long as each day's roll-up took, leaving the CPU to scans."""
        company = await self.company()
        deleted = await analytics.purge(self._store, company, self.clock(), paced=paced)
        await self.leads.purge(company, self.clock())  # the lead inbox follows the same retention setting
        return deleted

    def audit_pages(self, *, actor: str | None = None) -> AsyncIterator[list[AuditEvent]]:
        """The whole audit trail (or one actor's rows), newest first, a page at a time (for exports)."""
        return _keyset_pages(lambda below: self._store.audit_events(actor=actor, before_id=below, limit=EXPORT_PAGE))

    async def audit_log(self, *, actor: str | None = None, limit: int = 100, offset: int = 0) -> list[AuditEvent]:
        """The audit trail, newest first, optionally one actor's rows only."""
        return await self._store.audit_events(actor=actor, limit=limit, offset=offset)

    async def count_audit_log(self, *, actor: str | None = None) -> int:
        return await self._store.count_audit_events(actor=actor)

    async def audit_actors(self) -> list[str]:
        return await self._store.audit_actors()

    # --- SCIM provisioning (the rules: provisioning.py; the mapping: scim.py) -------------------------

    async def scim_users(self) -> list[ScimUser]:
        return await provisioning.users(self._store)

    async def scim_user(self, employee_id: int) -> ScimUser | None:
        return await provisioning.user(self._store, employee_id)

    async def provision(self, wanted: Wanted, *, actor: str) -> ScimUser:
        """A SCIM create: a new employee (departed at once when ``wanted`` is inactive)."""
        profile = _checked_profile(wanted.profile)
        async with self._change(actor) as change:
            _check_printed_text(await change.company(), profile)
            return await provisioning.create(change, wanted, profile)

    async def reprovision(self, found: ScimUser, wanted: Wanted, *, actor: str) -> ScimUser:
        """A SCIM replace or patch: the new profile; deactivation deprovisions, re-activation does not revive the
        old link."""
        profile = _checked_profile(dataclasses.replace(wanted.profile, latin_name=found.employee.latin_name))
        async with self._change(actor) as change:
            _check_printed_text(await change.company(), profile)
            return await provisioning.update(change, found, wanted, profile)

    async def unprovision(self, found: ScimUser, document: str, *, actor: str) -> None:
        """A SCIM delete: deprovisioned, and gone from SCIM."""
        async with self._change(actor) as change:
            await provisioning.delete(change, found, document)

    async def create_scim_token(self, *, actor: str) -> str:
        async with self._change(actor) as change:
            return await provisioning.create_token(change)

    async def revoke_scim_tokens(self, token_id: int | None = None, *, actor: str) -> list[int]:
        async with self._change(actor) as change:
            return await provisioning.revoke_tokens(change, token_id)

    async def scim_client(self, token: str) -> ScimToken | None:
        """The live SCIM token this is, or None (nothing is written for a refused one)."""
        return await provisioning.authenticate(self._store, token, self.clock())

    async def note_scim_error(self, error: ScimError) -> None:
        await provisioning.note_error(self._store, error)

    async def scim_state(self) -> ScimState:
        return await provisioning.state(self._store)

    # --- the scan path ------------------------------------------------------------------------

    async def resolve(self, token: str, *, deadline: float | None = None) -> Resolution:
        """Decide what a link shows. Never raises for a bad token: that is an outcome too.

        ``deadline`` (a time of the running loop) bounds the wait for the cache check: TimeoutError past it.
        """
        await self._refresh(deadline)
        company = await self.company()
        if not tokens.is_well_formed(token):
            return Resolution(Outcome.MALFORMED, company)
        key = tokens.digest(token)
        cached = self._cards.get(key)
        if cached is None:
            epoch = self._invalidations
            # Misses are not cached, so a flood of made-up tokens cannot grow memory.
            cached = await self._load(key, token)
            if cached is None:
                return Resolution(Outcome.UNKNOWN, company)
            if epoch == self._invalidations:  # else read before a change it may not show: used once, not kept
                if len(self._cards) >= CARD_CACHE_SIZE:
                    self._cards.clear()
                self._cards[key] = cached
        res = self._as_cached(company, cached)
        if res is not None:
            return res
        employee = cached.employee
        successor, url = await self._successor(employee)
        return Resolution(Outcome.DEPARTED, company, card=cached.record.card, employee=employee,
                          successor=successor, successor_url=url)

    def cached_resolution(self, token: str) -> Resolution | None:
        """What ``resolve`` says, from the cache alone and without waiting for a check; None when something must
        be read first (a cold cache, an unknown or malformed link, a departed employee's successor).

        Valid as of ``seen_version``: the scan writer checks that under the write lock and stores nothing if
        another connection has committed since (``ScanWriter.submit``'s ``fresh_at``). A change made here drops
        the cache before it is answered, so a request sent after it never finds the old entry.
        """
        company = self._company
        if company is None or self._seen_data_version < 0 or not tokens.is_well_formed(token):
            return None
        cached = self._cards.get(tokens.digest(token))
        return None if cached is None else self._as_cached(company, cached)

    @property
    def seen_version(self) -> int:
        """The ``PRAGMA data_version`` the caches are known to be good at (-1 before the first check)."""
        return self._seen_data_version

    def data_changed(self, version: int) -> None:
        """Another connection has committed (the scan writer found it so under the write lock)."""
        if version != self._seen_data_version:
            self.invalidate()
            self._seen_data_version = version

    def _as_cached(self, company: Company, cached: _CachedCard) -> Resolution | None:
        """The resolution of a cached card, None for a departed employee's (whose successor is read first)."""
        card, employee = cached.record.card, cached.employee
        if employee.status is EmployeeStatus.DEPARTED or card.revoked_reason == "departed":
            return None
        if card.revoked_at is not None:
            return Resolution(Outcome.REVOKED, company, card=card, employee=employee)
        if self.clock() >= card.expires_at:
            return Resolution(Outcome.EXPIRED, company, card=card, employee=employee)
        view = cached.view[0]
        if view is None or view.company is not company:
            view = cached.view[0] = Resolution(Outcome.VIEW, company, card=card, employee=employee,
                                               channels=cached.channels)
        return view

    async def _load(self, key: bytes, token: str) -> _CachedCard | None:
        record = await self._store.card_by_digest(key)
        if record is None or not tokens.verify(self._secret, record.nonce, token):
            return None
        employee = await self._store.employee(record.card.employee_id)
        assert employee is not None
        company = await self.company()
        # A channel saved before the policy was tightened is still never shown to a customer.
        channels = tuple(c for c in await self._store.channels(employee.id) if _within_policy(company, c))
        return _CachedCard(record, employee, channels)

    async def _successor(self, employee: Employee) -> tuple[Employee | None, str | None]:
        seen = {employee.id}
        current = employee
        # Follow a chain of departures (A left to B, B left to C) to whoever is still here.
        while current.successor_id is not None and current.successor_id not in seen:
            nxt = await self._store.employee(current.successor_id)
            if nxt is None:
                break
            if nxt.status is EmployeeStatus.ACTIVE:
                record = await self._store.open_card(nxt.id)
                live = record is not None and record.card.is_live(self.clock())
                return nxt, (self._issued(record).url if live and record is not None else None)
            seen.add(nxt.id)
            current = nxt
        return None, None

    def scan_event(self, resolution: Resolution, outcome: Outcome, visitor: Visitor, channel: Channel | None = None,
                   *, at: datetime) -> ScanEvent:
        """The event that records one hit on a link (what it resolved to, who came, which button)."""
        return ScanEvent(
            time=at, outcome=outcome,
            card_id=resolution.card.id if resolution.card else None,
            employee_id=resolution.employee.id if resolution.employee else None,
            channel_id=channel.id if channel else None, channel_kind=channel.kind.value if channel else None,
            user_agent=visitor.user_agent, referrer=visitor.referrer, accept_language=visitor.accept_language,
            visitor_key=visitor.key, is_bot=visitor.is_bot, device=visitor.device, os=visitor.os,
            browser=visitor.browser,
        )

    def channel_for(self, resolution: Resolution, channel_id: int) -> Channel | None:
        """Only a channel the page itself offered may be followed: the card's own, or the company's."""
        offered = resolution.channels if resolution.live else resolution.company.channels
        return next((c for c in offered if c.id == channel_id), None)


class _Identified(Protocol):
    @property
    def id(self) -> int: ...


_Row = TypeVar("_Row", bound=_Identified)


async def _keyset_pages(fetch: Callable[[int | None], Awaitable[list[_Row]]]) -> AsyncIterator[list[_Row]]:
    """Pages newest first, each asking for the rows after the last one seen (None: from the newest). Rows
    committed during a long export are never seen, and none is skipped or written twice (offsets would shift)."""
    below: int | None = None
    while page := await fetch(below):
        yield page
        below = page[-1].id


def _give_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _answer(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


def _within_policy(company: Company, channel: Channel) -> bool:
    try:
        policy.check_policy(company, channel.kind, channel.target)
        policy.check_text(company, Message("label"), channel.label)
    except ValidationError:
        return False
    return True


def _check_successor(employee: Employee, successor: Employee | None) -> None:
    if successor is not None and (successor.id == employee.id or successor.status is EmployeeStatus.DEPARTED):
        raise ValidationError("the successor must be another active employee")


def _check_printed_text(company: Company, employee: Employee | EmployeeProfile) -> None:
    """The names, title and department are printed on the card (the name in the vCard too): no personal contact
    may ride along in them. A name is read whole, in both orders, so a number split across its parts is seen."""
    e = employee
    for what, first, second in ((Message("name"), e.family_name, e.given_name),
                                (Message("name reading"), e.family_kana, e.given_kana)):
        policy.check_text(company, what, f"{first} {second}")
        policy.check_text(company, what, f"{second} {first}")
    policy.check_text(company, Message("Latin name"), e.latin_name)
    policy.check_text(company, Message("title"), e.title)
    policy.check_text(company, Message("department"), e.department)


def _profile(value: object) -> dict[str, object]:
    """A value's fields for the audit trail (the company's channel list is audited separately)."""
    assert dataclasses.is_dataclass(value) and not isinstance(value, type)
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.name != "channels"}


def _kind(kind: ChannelKind | str) -> ChannelKind:
    try:
        return ChannelKind(kind)
    except ValueError:
        raise ValidationError("unknown channel kind %(kind)r; use one of: %(kinds)s", kind=kind,
                              kinds=", ".join(k.value for k in ChannelKind)) from None


def _text(what: Message, value: str, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    value = " ".join(value.split())
    if required and not value:
        raise ValidationError("%(what)s is required", what=what)
    if len(value) > limit:
        raise ValidationError("%(what)s is longer than %(limit)d characters", what=what, limit=limit)
    return value


def _checked_profile(p: EmployeeProfile) -> EmployeeProfile:
    """The profile checked and normalised (ValidationError names the bad field)."""
    email = p.email.strip()
    if not policy.is_email(email) or len(email) > 254:
        raise ValidationError("not an email address: %(email)r", email=email)
    return EmployeeProfile(
        email=email, family_name=_text(Message("family name"), p.family_name, required=True),
        given_name=_text(Message("given name"), p.given_name),
        family_kana=_text(Message("family name reading"), p.family_kana),
        given_kana=_text(Message("given name reading"), p.given_kana),
        latin_name=_text(Message("Latin name"), p.latin_name),
        title=_text(Message("title"), p.title), department=_text(Message("department"), p.department),
    )


def _days(days: int) -> int:
    if not 1 <= days <= MAX_CARD_DAYS:
        raise ValidationError("days must be between 1 and %(most)d", most=MAX_CARD_DAYS)
    return days


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("unknown time zone %(name)r", name=name) from None


def _extended(card: Card, employee: Employee, expires_at: datetime) -> dict[str, Any]:
    """The ``card.extended`` webhook's data."""
    return {"card_id": card.id, "employee": hooks.employee_data(employee), "expires_at": hooks.iso(expires_at),
            "previous_expires_at": hooks.iso(card.expires_at)}


def local_time(company: Company, when: datetime) -> datetime:
    return when.astimezone(ZoneInfo(company.timezone))


# The last (zone, UTC second) whose local date was asked for, and that date (one tuple, read and replaced whole).
_last_day: list[tuple[str, int, str]] = [("", 0, "")]


def local_day(company: Company, when: datetime) -> str:
    """``local_time(company, when).date().isoformat()``, computed once per UTC second (the scan path asks for every
    scan): zone offsets and their changes are whole seconds, so a UTC second lies within one local day."""
    second = math.floor(when.timestamp())
    zone, cached_second, day = _last_day[0]
    if zone != company.timezone or cached_second != second:
        day = local_time(company, when).date().isoformat()
        _last_day[0] = (company.timezone, second, day)
    return day
