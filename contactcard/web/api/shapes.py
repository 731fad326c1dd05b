"""The API's request and response shapes, as pydantic models: they validate what comes in, serialise what goes
out, and are where the OpenAPI document's schemas and examples come from (``openapi``), so the document cannot
drift from the code.

Bodies are strict (a JSON string is not a number, an unknown field is refused); query strings are read leniently
(every value arrives as text). Limits mirror the service's (``service.MAX_TEXT``, ``MAX_CARD_DAYS``) so the
schema says what the service will refuse; the service still checks everything itself.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from ...models import Card, Channel, ChannelKind, Employee, EmployeeStatus, IssuedCard, Outcome
from ...service import MAX_CARD_DAYS, MAX_TEXT
from ...stats import MAX_DAYS, Stats
from ...store import EventRow

MAX_ID = 2**53 - 1  # ids beyond this are no one's (and stay exact in every JSON client)
MAX_PAGE = 500
NOW = "2026-11-28T01:00:00Z"


def _examples(*examples: JsonDict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


def _text() -> str:
    return Field(default="", max_length=MAX_TEXT)


class EmployeeCreate(Body):
    """A new employee (the console's "new employee" form)."""

    model_config = ConfigDict(strict=True, extra="forbid", **_examples({
        "email": "taro@acme.co.jp", "family_name": "山田", "given_name": "太郎", "family_kana": "ヤマダ",
        "given_kana": "タロウ", "title": "課長", "department": "営業部"}))
    email: str = Field(max_length=254)
    family_name: str = Field(min_length=1, max_length=MAX_TEXT)
    given_name: str = _text()
    family_kana: str = _text()
    given_kana: str = _text()
    latin_name: str = _text()
    title: str = _text()
    department: str = _text()


class EmployeeUpdate(Body):
    """The fields to change; the others keep their values."""

    model_config = ConfigDict(strict=True, extra="forbid", **_examples({"title": "部長"}))
    email: str | None = Field(default=None, max_length=254)
    family_name: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    given_name: str | None = Field(default=None, max_length=MAX_TEXT)
    family_kana: str | None = Field(default=None, max_length=MAX_TEXT)
    given_kana: str | None = Field(default=None, max_length=MAX_TEXT)
    latin_name: str | None = Field(default=None, max_length=MAX_TEXT)
    title: str | None = Field(default=None, max_length=MAX_TEXT)
    department: str | None = Field(default=None, max_length=MAX_TEXT)


class Departure(Body):
    """The employee leaves; their link then introduces ``successor_id`` (or the company without one)."""

    model_config = ConfigDict(strict=True, extra="forbid", **_examples({"successor_id": 2}, {}))
    successor_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class ChannelCreate(Body):
    """A channel on the card; the company's policy applies exactly as in the console."""

    model_config = ConfigDict(strict=True, extra="forbid", **_examples(
        {"kind": "line", "target": "https://line.me/R/ti/p/@acme", "label": "LINE公式アカウント"},
        {"kind": "phone", "target": "tel:03-1234-5679"}))
    kind: ChannelKind
    target: str = Field(max_length=2000)
    label: str = _text()


class ChannelMove(Body):
    """Move the channel one place up or down among the employee's channels (the console's arrows)."""

    model_config = ConfigDict(strict=True, extra="forbid", **_examples({"direction": "up"}))
    direction: Literal["up", "down"]


class CardIssue(Body):
    model_config = ConfigDict(strict=True, extra="forbid", **_examples({"days": 90, "label": "展示会 2026"}, {}))
    days: int | None = Field(default=None, ge=1, le=MAX_CARD_DAYS, description="default: the company's lifetime")
    label: str = _text()


class CardDays(Body):
    model_config = ConfigDict(strict=True, extra="forbid", **_examples({"days": 30}, {}))
    days: int | None = Field(default=None, ge=1, le=MAX_CARD_DAYS, description="default: the company's lifetime")


# --- query strings --------------------------------------------------------------------------------


class Query(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def _usable_day(day: date | None) -> date | None:
    # The calendar's first and last days have no UTC bounds in every zone (see admin.base.parse_day).
    if day is not None and not date.min < day < date.max:
        raise ValueError("that day cannot be used")
    return day


class ScanFilterQuery(Query):
    """The scan log's filters, as in the console: local days in the company's time zone, both ends included."""

    employee_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    outcome: Outcome | None = None
    from_: date | None = Field(default=None, alias="from", description="first local day (YYYY-MM-DD)")
    to: date | None = Field(default=None, description="last local day (YYYY-MM-DD)")

    @model_validator(mode="after")
    def _days_in_order(self) -> ScanFilterQuery:
        _usable_day(self.from_)
        _usable_day(self.to)
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError("'from' is after 'to'")
        return self


class ScanPageQuery(ScanFilterQuery):
    """Keyset pages, newest first: ``before`` gives the page older than that event id, ``after`` the newer."""

    before: int | None = Field(default=None, ge=1, le=MAX_ID)
    after: int | None = Field(default=None, ge=1, le=MAX_ID)
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


class ExpiringQuery(Query):
    within_days: int | None = Field(default=None, ge=1, le=MAX_CARD_DAYS,
                                    description="default: the company's notice (two weeks, or half the default "
                                                "link lifetime when that is shorter)")


class StatsQuery(Query):
    employee_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    days: int = Field(default=30, ge=1, le=MAX_DAYS, description="the last N local days, today included")


# --- responses ------------------------------------------------------------------------------------


class EmployeeOut(BaseModel):
    model_config = _examples({
        "id": 1, "email": "taro@acme.co.jp", "family_name": "山田", "given_name": "太郎", "family_kana": "ヤマダ",
        "given_kana": "タロウ", "latin_name": "", "title": "課長", "department": "営業部", "status": "active",
        "successor_id": None, "display_name": "山田 太郎", "created_at": NOW})
    id: int
    email: str
    family_name: str
    given_name: str
    family_kana: str
    given_kana: str
    latin_name: str
    title: str
    department: str
    status: EmployeeStatus
    successor_id: int | None
    display_name: str
    created_at: datetime

    @classmethod
    def of(cls, e: Employee) -> EmployeeOut:
        return cls(id=e.id, email=e.email, family_name=e.family_name, given_name=e.given_name,
                   family_kana=e.family_kana, given_kana=e.given_kana, latin_name=e.latin_name, title=e.title,
                   department=e.department, status=e.status, successor_id=e.successor_id,
                   display_name=e.display_name, created_at=e.created_at)


class ChannelOut(BaseModel):
    model_config = _examples({"id": 3, "kind": "line", "target": "https://line.me/R/ti/p/@acme",
                              "label": "LINE公式アカウント", "position": 0, "employee_id": 1})
    id: int
    kind: ChannelKind
    target: str
    label: str
    position: int
    employee_id: int | None

    @classmethod
    def of(cls, c: Channel) -> ChannelOut:
        return cls(id=c.id, kind=c.kind, target=c.target, label=c.label, position=c.position,
                   employee_id=c.employee_id)


class CardOut(BaseModel):
    """A card; ``url`` is its link (what the QR code holds), given for the employee's current card."""

    model_config = _examples({
        "id": 7, "employee_id": 1, "generation": 2, "label": "", "status": "live", "created_at": NOW,
        "expires_at": "2027-02-26T01:00:00Z", "revoked_at": None, "revoked_reason": None,
        "url": "https://cards.acme.co.jp/c/Ab3dEf5hIj7kLm9nOp1q"})
    id: int
    employee_id: int
    generation: int
    label: str
    status: Literal["live", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    url: str | None

    @classmethod
    def of(cls, card: Card, now: datetime, url: str | None) -> CardOut:
        status: Literal["live", "expired", "revoked"] = (
            "revoked" if card.revoked_at is not None else "live" if card.is_live(now) else "expired")
        return cls(id=card.id, employee_id=card.employee_id, generation=card.generation, label=card.label,
                   status=status, created_at=card.created_at, expires_at=card.expires_at, revoked_at=card.revoked_at,
                   revoked_reason=card.revoked_reason, url=url)

    @classmethod
    def issued(cls, issued: IssuedCard, now: datetime) -> CardOut:
        return cls.of(issued.card, now, issued.url if issued.card.revoked_at is None else None)


class ScanOut(BaseModel):
    """One hit on a card link (``is_bot``: a link-preview fetcher or crawler, never counted as a person)."""

    model_config = _examples({
        "id": 1042, "time": NOW, "outcome": "click", "card_id": 7, "employee_id": 1,
        "employee_email": "taro@acme.co.jp", "channel_kind": "line", "user_agent": "Mozilla/5.0 (iPhone…)",
        "referrer": "", "accept_language": "ja", "visitor_key": "3f9c…", "is_bot": False, "device": "mobile",
        "os": "iOS", "browser": "Mobile Safari"})
    id: int
    time: datetime
    outcome: Outcome
    card_id: int | None
    employee_id: int | None
    employee_email: str | None
    channel_kind: str | None
    user_agent: str
    referrer: str
    accept_language: str
    visitor_key: str
    is_bot: bool
    device: str
    os: str
    browser: str

    @classmethod
    def of(cls, r: EventRow) -> ScanOut:
        return cls(id=r.id, time=r.time, outcome=r.outcome, card_id=r.card_id, employee_id=r.employee_id,
                   employee_email=r.employee_email, channel_kind=r.channel_kind, user_agent=r.user_agent,
                   referrer=r.referrer, accept_language=r.accept_language, visitor_key=r.visitor_key,
                   is_bot=r.is_bot, device=r.device, os=r.os, browser=r.browser)


class ScanPage(BaseModel):
    """A page of the scan log, newest first. ``older``/``newer``: the query for the next page that way (null at
    the end); ``total``: the matches, counted up to 10,000 (``total_capped`` past that)."""

    model_config = _examples({"items": [], "older": "before=1001&limit=50", "newer": None, "total": 1200,
                              "total_capped": False})
    items: list[ScanOut]
    older: str | None
    newer: str | None
    total: int
    total_capped: bool


class ExtendedOut(BaseModel):
    model_config = _examples({"extended": 12})
    extended: int = Field(description="how many links were extended")


class DayOut(BaseModel):
    day: str
    scans: int
    unique_visitors: int
    clicks: int
    clicking_visitors: int
    vcards: int
    bots: int
    click_rate: float


class StatsOut(BaseModel):
    """People's scans, visitors, clicks and saves per local day (bots apart), the console's figures."""

    model_config = _examples({"employee_id": None, "card_id": None, "total": {
        "day": "2026-11-28..2026-11-28", "scans": 12, "unique_visitors": 9, "clicks": 4, "clicking_visitors": 3,
        "vcards": 2, "bots": 1, "click_rate": 0.3333}, "days": []})
    employee_id: int | None
    card_id: int | None
    total: DayOut
    days: list[DayOut]

    @classmethod
    def of(cls, stats: Stats) -> StatsOut:
        return cls.model_validate(stats.as_json())


class FieldError(BaseModel):
    location: str
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    model_config = _examples({
        "type": "urn:contactcard:problem:policy", "title": "Refused by the company's channel policy",
        "status": 422, "detail": "taro.private@gmail.com is not a company email address"})
    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None
