"""Rows as values: what the store returns besides ``models`` values, and the row mappers."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from ..models import (
    Card,
    Channel,
    ChannelKind,
    Employee,
    EmployeeStatus,
    Outcome,
    User,
)
from .base import _opt_ts, parse_ts


@dataclass(frozen=True)
class CardRecord:
    """A card with the nonce its token is derived from; never leaves the service."""

    card: Card
    nonce: bytes


@dataclass(frozen=True)
class EventRow:
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
    is_bot: bool = False
    device: str = ""
    os: str = ""
    browser: str = ""


@dataclass(frozen=True)
class EventFilter:
    """Which events to read; every part optional, times are instants, [since, until)."""

    employee_id: int | None = None
    outcomes: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    max_id: int | None = None  # pins an export to the events stored when it began, whatever their time


@dataclass(frozen=True)
class UserRecord:
    """A user with the secrets that never leave the accounts service."""

    user: User
    password_hash: str | None
    disabled_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    oidc_issuer: str | None = None  # opened through single sign-on with this provider
    id_token_sealed: bytes | None = field(default=None, repr=False)  # its ID token, ``auth.seal``ed


@dataclass(frozen=True)
class InvitationRecord:
    user_id: int
    purpose: str  # "invite" | "reset"
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None




def _employee(r: sqlite3.Row) -> Employee:
    return Employee(
        id=r["id"], email=r["email"], family_name=r["family_name"], given_name=r["given_name"],
        family_kana=r["family_kana"], given_kana=r["given_kana"], latin_name=r["latin_name"], title=r["title"],
        department=r["department"], photo_sha=r["photo_sha"], status=EmployeeStatus(r["status"]),
        successor_id=r["successor_id"], created_at=parse_ts(r["created_at"]),
    )


def _channel(r: sqlite3.Row) -> Channel:
    return Channel(id=r["id"], kind=ChannelKind(r["kind"]), target=r["target"], label=r["label"],
                   position=r["position"], employee_id=r["employee_id"])


def _card(r: sqlite3.Row) -> CardRecord:
    card = Card(
        id=r["id"], employee_id=r["employee_id"], generation=r["generation"], label=r["label"],
        created_at=parse_ts(r["created_at"]), expires_at=parse_ts(r["expires_at"]),
        revoked_at=_opt_ts(r["revoked_at"]), revoked_reason=r["revoked_reason"],
    )
    return CardRecord(card=card, nonce=bytes(r["nonce"]))


def _user(r: sqlite3.Row) -> UserRecord:
    return UserRecord(
        user=User(id=r["id"], email=r["email"], role=r["role"], employee_id=r["employee_id"]),
        password_hash=r["password_hash"], disabled_at=_opt_ts(r["disabled_at"]), created_at=parse_ts(r["created_at"]),
    )

