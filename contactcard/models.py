"""Domain values and the exception tree.

Everything here is a frozen value; the store maps rows to these and the service passes them around.
Times are timezone-aware UTC ``datetime`` objects.

Exceptions::

    ContactcardError            base; ``err.message`` is a ``Message`` (``str(err)``: its English line, for the
                                CLI and logs; the web shows it translated, ``i18n.Translator.message``)
    ├── ValidationError         input that can never be right (bad URL scheme, empty name, bad value)
    │   └── PolicyError         a well-formed target that is not a company channel under the policy
    ├── NotFound                the thing named does not exist (employee, channel, card)
    ├── Conflict                the request clashes with current state (duplicate email, no live card)
    └── Busy                    another program holds the database's write lock; nothing was written
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

Clock = Callable[[], datetime]  # injected everywhere the time is read (tests pass a fake one)


@dataclass(frozen=True, init=False)
class Message:
    """A sentence to show a person: an English message id (the gettext msgid, with ``%(name)s`` fields) and the
    values of its fields. A value may be a Message itself (a phrase such as a field's name), translated in turn.

    Write the id as a literal at the place that says it (``Message("family name")``,
    ``ValidationError("%(what)s is required", what=...)``): tests/test_i18n.py collects every such literal and
    fails when one has no Japanese translation with the same fields.
    """

    id: str
    values: Mapping[str, object]

    def __init__(self, id: str, /, **values: object) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "values", values)

    def render(self, gettext: Callable[[str], str]) -> str:
        """The sentence in the language of ``gettext`` (identity: English)."""
        text = gettext(self.id)
        if not self.values:
            return text
        return text % {name: value.render(gettext) if isinstance(value, Message) else value
                       for name, value in self.values.items()}

    def __str__(self) -> str:
        return self.render(str)


class ContactcardError(Exception):
    """Base of every error the service raises on purpose: ``ContactcardError(id, **values)`` carries the
    ``Message(id, **values)`` a person is shown."""

    def __init__(self, message: str, /, **values: object) -> None:
        self.message = Message(message, **values)
        super().__init__(str(self.message))


class ValidationError(ContactcardError):
    """Input that is malformed whatever the state."""


class PolicyError(ValidationError):
    """A target outside the company's channel policy."""


class NotFound(ContactcardError):
    """The named thing does not exist."""


class Conflict(ContactcardError):
    """The request clashes with the current state."""


class Busy(ContactcardError):
    """Another connection held the database's write lock too long; nothing was written, try again."""


class ChannelKind(enum.StrEnum):
    LINE = "line"
    LINE_WORKS = "line_works"
    PHONE = "phone"
    EMAIL = "email"
    WEB = "web"
    BOOKING = "booking"
    TEAMS = "teams"
    WHATSAPP = "whatsapp"
    CUSTOM = "custom"


class EmployeeStatus(enum.StrEnum):
    ACTIVE = "active"
    DEPARTED = "departed"


class Outcome(enum.StrEnum):
    """What a hit under ``/c/`` turned out to be."""

    VIEW = "view"  # the card page was shown
    CLICK = "click"  # a channel button was followed
    VCARD = "vcard"  # the contact was saved
    QR = "qr"  # the QR image was fetched
    EXPIRED = "expired"
    REVOKED = "revoked"  # revoked or replaced by a rotation
    DEPARTED = "departed"  # the employee has left; successor or company shown
    UNKNOWN = "unknown"  # well-formed token that matches no card
    MALFORMED = "malformed"  # not even shaped like a token
    BAD_CHANNEL = "bad_channel"  # a live card, but no such channel
    LEAD = "lead"  # the card's contact form was posted (stored or not; a spam trap's catch is a bot)


# What counts as a scan, everywhere (dashboard, stats, /me): someone opening a card link, the live page or the page
# an ended link shows instead. Bots are recorded but never counted as people.
SCAN_OUTCOMES: tuple[Outcome, ...] = (Outcome.VIEW, Outcome.EXPIRED, Outcome.REVOKED, Outcome.DEPARTED)


@dataclass(frozen=True)
class Channel:
    id: int
    kind: ChannelKind
    target: str
    label: str
    position: int
    employee_id: int | None  # None: one of the company's general channels


EXPIRY_NOTICE = timedelta(days=14)  # see Company.expiry_notice


@dataclass(frozen=True)
class Company:
    name: str
    name_en: str
    logo_sha: str | None
    brand_color: str
    business_hours: str
    business_hours_en: str
    timezone: str
    default_card_days: int
    retention_days: int
    allow_email_domains: tuple[str, ...]
    allow_phone_prefixes: tuple[str, ...]
    allow_line_ids: tuple[str, ...]
    allow_line_works_domains: tuple[str, ...]
    allow_web_hosts: tuple[str, ...] = ()  # web, booking and custom links must be on these hosts (or subdomains)
    leads_enabled: bool = False  # card pages offer the form "leave your contact" (off until the company turns it on)
    preview_photo: bool = False  # a live card's link preview shows the employee's photo (off: the company's image)
    channels: tuple[Channel, ...] = ()

    def name_for(self, lang: str) -> str:
        """The name a reader of ``lang`` is shown: the Latin-script one, when given, to anyone but a Japanese reader."""
        return self.name_en if lang != "ja" and self.name_en else self.name

    @property
    def expiry_notice(self) -> timedelta:
        """How long before a live link expires the console and the employee's /me say so: two weeks, or half the
        default lifetime (in whole days) when that is shorter, so a company that issues week-long links on purpose
        does not hear about every link all the time."""
        return min(EXPIRY_NOTICE, timedelta(days=max(1, self.default_card_days // 2)))

    @property
    def has_policy(self) -> bool:
        return bool(
            self.allow_email_domains
            or self.allow_phone_prefixes
            or self.allow_line_ids
            or self.allow_line_works_domains
            or self.allow_web_hosts
        )


@dataclass(frozen=True)
class EmployeeProfile:
    """What an admin writes about an employee: names, readings, work email, title, department.

    Built by the console's form, the CLI and the demo; the service checks and normalises it.
    """

    email: str
    family_name: str
    given_name: str = ""
    family_kana: str = ""
    given_kana: str = ""
    latin_name: str = ""
    title: str = ""
    department: str = ""


@dataclass(frozen=True)
class Employee:
    id: int
    email: str
    family_name: str
    given_name: str
    family_kana: str
    given_kana: str
    latin_name: str
    title: str
    department: str
    photo_sha: str | None  # content address of the photo in the media table
    status: EmployeeStatus
    successor_id: int | None
    created_at: datetime

    @property
    def display_name(self) -> str:
        """Family name first (Japanese order) unless both parts are Latin script."""
        if not self.given_name:
            return self.family_name
        if self.family_name.isascii() and self.given_name.isascii():
            return f"{self.given_name} {self.family_name}"
        return f"{self.family_name} {self.given_name}"

    @property
    def profile(self) -> EmployeeProfile:
        return EmployeeProfile(**{f.name: getattr(self, f.name) for f in fields(EmployeeProfile)})

    @property
    def kana_name(self) -> str:
        return " ".join(p for p in (self.family_kana, self.given_kana) if p)

    def name_for(self, lang: str) -> str:
        """The name a reader of ``lang`` is shown: the Latin-script one, when given, to anyone but a Japanese reader."""
        return self.latin_name if lang != "ja" and self.latin_name else self.display_name


@dataclass(frozen=True)
class Card:
    id: int
    employee_id: int
    generation: int
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class IssuedCard:
    """A card together with its link; the token exists only in memory, never in the database."""

    card: Card
    token: str
    url: str


@dataclass(frozen=True)
class ScanEvent:
    time: datetime
    outcome: Outcome
    card_id: int | None = None
    employee_id: int | None = None
    channel_id: int | None = None
    channel_kind: str | None = None
    user_agent: str = ""
    referrer: str = ""
    accept_language: str = ""
    visitor_key: str = ""
    is_bot: bool = False
    device: str = ""
    os: str = ""
    browser: str = ""


@dataclass(frozen=True)
class DayTotals:
    """People's counts over one local day (or a span, ``day`` "first..last") at one scope: a card, an employee
    (``card_id`` 0) or the company (both 0). Bots are counted apart and never as people."""

    day: str
    scans: int = 0  # SCAN_OUTCOMES hits
    visitors: int = 0  # distinct visitor keys among those scans
    clicks: int = 0  # channel buttons followed
    clickers: int = 0  # distinct visitor keys among those clicks
    vcards: int = 0  # contacts saved
    bots: int = 0
    employee_id: int = 0
    card_id: int = 0

    @property
    def click_rate(self) -> float:
        """The share of visitors who followed a channel."""
        return 0.0 if not self.visitors else min(1.0, self.clickers / self.visitors)


@dataclass(frozen=True)
class LeadInput:
    """What a customer typed into a card's contact form, checked and trimmed (see ``leads.parse``)."""

    name: str
    organisation: str
    email: str
    phone: str
    message: str


@dataclass(frozen=True)
class Lead:
    """A customer's contact left on a card page, in the company's inbox, with the consent they gave."""

    id: int
    time: datetime
    card_id: int | None
    employee_id: int | None  # whose card it came through (context for the company; never sent to them)
    name: str
    organisation: str
    email: str
    phone: str
    message: str
    language: str
    consent_version: str
    consent_text: str


class Role(enum.StrEnum):
    ADMIN = "admin"
    EMPLOYEE = "employee"


@dataclass(frozen=True)
class User:
    """Someone who signs in: an admin, or an employee linked to their employee row."""

    id: int
    email: str
    role: str  # "admin" | "employee" (Role values)
    employee_id: int | None


class ApiScope(enum.StrEnum):
    """What an API token may do: ``read`` employees, channels and cards; ``write`` them too; ``scans`` read the
    scan log, its figures and its export (and nothing else: a CRM feed never needs to change a card)."""

    READ = "read"
    WRITE = "write"
    SCANS = "scans"


@dataclass(frozen=True)
class ApiToken:
    """An API token as stored: its name (the audit trail's actor is ``api:NAME``), scope and lifetime; the token
    itself exists only in the one answer that created it."""

    id: int
    name: str
    scope: ApiScope
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @property
    def actor(self) -> str:
        return f"api:{self.name}"

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class AuditEvent:
    """One row of the append-only audit trail; ``before``/``after`` are JSON text or None."""

    id: int
    time: datetime
    actor: str
    action: str
    target: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class ScimIdentity:
    """How the identity provider wrote one employee over SCIM (``scim``). Employees it never wrote have none."""

    employee_id: int
    user_name: str
    document: str  # the SCIM User as the provider last wrote it, JSON (``scim.view`` shows it)
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None  # a DELETE: the resource is gone for SCIM (404); the employee row stays, departed


@dataclass(frozen=True)
class ScimToken:
    """A bearer token the identity provider sends; only its SHA-256 is stored."""

    id: int
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None  # written at most once a minute


@dataclass(frozen=True)
class ScimError:
    """One SCIM request that was answered with an error, kept for the settings page (the latest few)."""

    time: datetime
    method: str
    route: str  # the route template, never the path
    status: int
    scim_type: str
    detail: str
