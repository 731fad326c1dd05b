"""Lead capture: a customer leaves their contact for the company on a card page, with their consent.

The form (name, organisation, email or phone, message, and a consent line naming the company and the purpose,
as Japan's APPI asks) is offered only when the company turned it on. An entry goes to the company's inbox in
the console, never to the employee whose card it came through. It keeps the consent text as shown, in the
customer's language, and its version (``CONSENT_VERSION``: change it whenever the wording changes).

No JavaScript and no third-party CAPTCHA; spam is kept out by:

- the form token (``tokens.form_token``): signed with a key derived from the server secret, bound to the card
  and to the time the form was served. It makes the form CSRF-safe without a session or cookie: a post
  without a token this server made for this card in the last ``FORM_LIFETIME`` stores nothing. Its nonce's
  digest is stored with the entry, so the same form posted twice is one entry.
- a minimum fill time (``MIN_FILL`` since the form was served, by the token's own signed time);
- a honeypot field people never see or fill (``HONEYPOT``): a post that fills it is recorded as a bot and
  answered as if it had worked, so the robot learns nothing;
- limits per visitor (the day's visitor pseudonym, as scans use: no address) and for the whole company.

Entries follow the company's retention setting (``purge``). ``find``/``erase`` answer a data-subject request:
everything the inbox holds that mentions an email address, and its deletion (audited without the address).
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import audit as audit_trail
from . import policy, tokens
from .models import Clock, Company, Lead, LeadInput, NotFound
from .store import Store

CONSENT_VERSION = "2026-11-29"
MIN_FILL = timedelta(seconds=3)
FORM_LIFETIME = timedelta(hours=2)
PER_VISITOR_PER_DAY = 3
PER_COMPANY_PER_HOUR = 60
HONEYPOT = "website"
FIELDS = ("name", "organisation", "email", "phone", "message")
LIMITS = {"name": 100, "organisation": 100, "email": 254, "phone": 32, "message": 2000}
_PHONE = re.compile(r"\+?[0-9()\- ]{6,32}")
CUSTOMER = "customer"  # the audit actor of a lead left on a card page


def _(message: str) -> str:
    """Marks a message for the catalogue; translated where it is shown (``web.customer``)."""
    return message


# The consent line under the form, shown in the customer's language and stored, as shown, with the entry.
CONSENT = _("I agree that %(company)s uses these details only to reply to my enquiry and deletes them after "
            "%(days)s days at the latest.")


class FormCheck(enum.StrEnum):
    """What the form's token says about a post."""

    OK = "ok"
    TOO_FAST = "too_fast"  # posted sooner than MIN_FILL after the form was served
    EXPIRED = "expired"  # served longer than FORM_LIFETIME ago (or, by the clock, in the future)
    INVALID = "invalid"  # not a token this server made for this card


@dataclass(frozen=True)
class Mentions:
    """What holds an email address, for a data-subject request: the inbox's entries (deletable here) and the
    staff records with that address (an employee's or a user's, managed on their own pages)."""

    leads: list[Lead]
    employee_id: int | None
    user_email: str | None


def parse(form: Mapping[str, str]) -> tuple[LeadInput, dict[str, str]]:
    """The entry as typed (trimmed; whitespace runs in one-line fields folded) and an error code per field."""
    values = {name: " ".join(form.get(name, "").split()) for name in FIELDS if name != "message"}
    values["message"] = form.get("message", "").replace("\r\n", "\n").strip()
    entry = LeadInput(**values)
    errors: dict[str, str] = {name: "too_long" for name in FIELDS if len(values[name]) > LIMITS[name]}
    if not entry.name:
        errors["name"] = "required"
    if not entry.email and not entry.phone:
        errors["contact"] = "email_or_phone"
    if entry.email and "email" not in errors and not policy.is_email(entry.email):
        errors["email"] = "invalid"
    if entry.phone and "phone" not in errors and (not _PHONE.fullmatch(entry.phone)
                                                   or sum(c.isdigit() for c in entry.phone) < 6):
        errors["phone"] = "invalid"
    if form.get("consent") != "yes":
        errors["consent"] = "required"
    return entry, errors


class Leads:
    """The lead use cases over the store. Built by ``Service`` (which alone holds the secret) as ``service.leads``."""

    def __init__(self, store: Store, clock: Clock, secret: bytes) -> None:
        self._store = store
        self._clock = clock
        self._key = tokens.form_key(secret)

    # --- the customer's side ------------------------------------------------------------------

    def form_token(self, link: str) -> str:
        """A fresh token for the form on the page of the card link ``link`` (its token), made now."""
        issued = int(self._clock().timestamp())
        return tokens.form_token(self._key, link, issued, secrets.token_bytes(tokens.FORM_NONCE_BYTES))

    def check_form(self, link: str, token: str) -> tuple[FormCheck, bytes]:
        """What the form's token says about a post to ``link``'s form, and the digest that identifies this form
        (empty unless the token is ours). Pure: no database, so it runs before the hit is recorded."""
        read = tokens.read_form_token(self._key, link, token)
        if read is None:
            return FormCheck.INVALID, b""
        issued, nonce = read
        age = self._clock().timestamp() - issued
        digest = hashlib.sha256(nonce).digest()
        if age < 0 or age > FORM_LIFETIME.total_seconds():
            return FormCheck.EXPIRED, digest
        if age < MIN_FILL.total_seconds():
            return FormCheck.TOO_FAST, digest
        return FormCheck.OK, digest

    async def over_limit(self, company: Company, visitor_key: str) -> bool:
        """Whether this visitor has left PER_VISITOR_PER_DAY leads in the company's day so far (their key is the
        day's), or the company PER_COMPANY_PER_HOUR in the last hour."""
        now = self._clock()
        if await self._store.count_leads_since(now - timedelta(hours=1)) >= PER_COMPANY_PER_HOUR:
            return True
        return await self._store.count_leads_since(now - timedelta(days=1), visitor_key) >= PER_VISITOR_PER_DAY

    async def leave(self, *, card_id: int, employee_id: int, entry: LeadInput, language: str, consent_text: str,
                    visitor_key: str, form_digest: bytes) -> int | None:
        """Store the entry in the company's inbox; None if this form was stored already (posted twice)."""
        async with self._store.transaction():
            now = self._clock()
            lead_id = await self._store.add_lead(now, card_id, employee_id, entry, language, CONSENT_VERSION,
                                                 consent_text, visitor_key, form_digest)
            if lead_id is not None:  # the trail says that and when, never what was typed
                await audit_trail.write(self._store, now, CUSTOMER, "lead.add", f"lead:{lead_id}", None,
                                        {"card_id": card_id, "consent_version": CONSENT_VERSION})
        return lead_id

    # --- the company's inbox ------------------------------------------------------------------

    async def inbox(self, *, limit: int, offset: int = 0) -> list[Lead]:
        return await self._store.leads(limit=limit, offset=offset)

    async def count(self) -> int:
        return await self._store.count_leads()

    async def every_page(self, size: int = 1000) -> list[list[Lead]]:
        """The whole inbox, newest first, in pages (for the CSV)."""
        pages, offset = [], 0
        while page := await self._store.leads(limit=size, offset=offset):
            pages.append(page)
            offset += size
        return pages

    async def get(self, lead_id: int) -> Lead:
        lead = await self._store.lead(lead_id)
        if lead is None:
            raise NotFound("no lead %(id)s", id=lead_id)
        return lead

    async def delete(self, lead_id: int, *, actor: str) -> None:
        async with self._store.transaction():
            lead = await self._store.lead(lead_id)
            if lead is None:
                raise NotFound("no lead %(id)s", id=lead_id)
            await self._store.delete_leads([lead_id])
            await audit_trail.write(self._store, self._clock(), actor, "lead.delete", f"lead:{lead_id}",
                                    {"time": lead.time, "card_id": lead.card_id}, None)

    async def find(self, email: str) -> Mentions:
        """Everything that holds ``email``: entries given with it or naming it, and staff records with it."""
        email = email.strip()
        employee = await self._store.employee_by_email(email)
        user = await self._store.user_by_email(email)
        return Mentions(await self._store.leads_mentioning(email), None if employee is None else employee.id,
                        None if user is None else user.user.email)

    async def erase(self, email: str, *, actor: str) -> int:
        """Delete every entry that holds ``email`` (a data-subject request); returns how many. The audit row
        counts them and keeps their ids, never the address."""
        async with self._store.transaction():
            ids = [lead.id for lead in await self._store.leads_mentioning(email.strip())]
            deleted = await self._store.delete_leads(ids)
            await audit_trail.write(self._store, self._clock(), actor, "privacy.erase", "leads", None,
                                    {"deleted": deleted, "lead_ids": ids})
        return deleted

    async def purge(self, company: Company, now: datetime) -> int:
        """Delete entries older than the company's retention period; returns how many."""
        async with self._store.transaction():
            return await self._store.delete_leads_before(now - timedelta(days=company.retention_days))

