"""Webhooks, the pure part: event types, endpoint secrets, Standard Webhooks signatures, the retry schedule and
the chat notification's text. No I/O here (the outbox is SQL in ``store``, sending is ``delivery``).

Standard Webhooks (https://www.standardwebhooks.com): each delivery carries ``webhook-id`` (the message's id,
the same on every retry and redelivery, so a receiver dedupes by it), ``webhook-timestamp`` (Unix seconds of
the attempt) and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` under the
endpoint's secret ``whsec_<base64>``). The body is ``{"type", "timestamp", "data"}``.

An endpoint's secret is never stored: it is HMAC(server secret, "webhook endpoint" + a random nonce kept in the
row), like a card's token, so a copy of the database without the secret file signs nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .models import Employee, Outcome, ScanEvent, ValidationError

SCAN_VIEWED = "scan.viewed"
SCAN_CHANNEL_TAPPED = "scan.channel_tapped"
SCAN_VCARD_SAVED = "scan.vcard_saved"
CARD_ISSUED = "card.issued"
CARD_ROTATED = "card.rotated"
CARD_REVOKED = "card.revoked"
CARD_EXTENDED = "card.extended"
EMPLOYEE_DEPARTED = "employee.departed"
TEST_EVENT = "webhook.test"  # sent by "send test event" only; nobody subscribes to it
EVENT_TYPES = (SCAN_VIEWED, SCAN_CHANNEL_TAPPED, SCAN_VCARD_SAVED, CARD_ISSUED, CARD_ROTATED, CARD_REVOKED,
               CARD_EXTENDED, EMPLOYEE_DEPARTED)
CHAT_EVENTS = (SCAN_CHANNEL_TAPPED, SCAN_VCARD_SAVED)  # what an employee may be told about in chat

# A person's hit on a card link, by outcome: the page (live or the page an ended link shows), a button, the vCard.
SCAN_TYPES: Mapping[str, str] = {
    Outcome.VIEW.value: SCAN_VIEWED, Outcome.EXPIRED.value: SCAN_VIEWED, Outcome.REVOKED.value: SCAN_VIEWED,
    Outcome.DEPARTED.value: SCAN_VIEWED, Outcome.CLICK.value: SCAN_CHANNEL_TAPPED,
    Outcome.VCARD.value: SCAN_VCARD_SAVED,
}

STANDARD = "standard"  # signed Standard Webhooks JSON, for a CRM or any program
CHAT = "chat"  # Slack/Teams incoming webhook: {"text": ...}; employees opt in to it on /me
KINDS = (STANDARD, CHAT)

# Retries: exponential from FIRST_RETRY, capped at MAX_RETRY, each delay scaled by a random 50-100% (jitter, so
# endpoints that failed together do not all retry together), for RETRY_WINDOW after the first failure. Past
# that the delivery is given up and the endpoint disabled (sustained failure), with an alert in the console.
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(hours=2)
RETRY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Endpoint:
    id: int
    kind: str  # STANDARD or CHAT
    url: str
    name: str
    events: tuple[str, ...]  # subscribed types (none for a chat endpoint)
    nonce: bytes  # the signing secret is endpoint_secret(server secret, nonce)
    enabled: bool
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str  # why it was disabled (sustained failure), shown as the console's alert


@dataclass(frozen=True)
class Due:
    """The oldest pending delivery of an enabled endpoint (each endpoint's queue is delivered in order)."""

    id: int
    endpoint: Endpoint
    message_id: str  # webhook-id
    body: str
    attempts: int
    first_failed_at: datetime | None


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to: ``state`` "delivered", "pending" (retry at ``next_at``) or "failed" (given up:
    the endpoint is disabled with ``error`` as the reason)."""

    delivery_id: int
    endpoint_id: int
    state: str
    at: datetime
    status: int | None
    error: str
    next_at: datetime | None = None
    first_failed_at: datetime | None = None


@dataclass(frozen=True)
class LogEntry:
    """A line of the console's delivery log."""

    id: int
    endpoint_id: int
    message_id: str
    type: str
    created_at: datetime
    state: str
    attempts: int
    next_at: datetime
    last_at: datetime | None
    last_status: int | None
    last_error: str


def employee_data(employee: Employee) -> dict[str, Any]:
    return {"id": employee.id, "email": employee.email, "name": employee.display_name}


def scan_data(event_id: int, event: ScanEvent, employee: Employee) -> dict[str, Any]:
    """A person's hit, as a CRM sees it: which card and button, the device class. No visitor key, address or
    user agent: nothing that identifies the customer."""
    return {
        "event_id": event_id, "outcome": event.outcome.value, "employee": employee_data(employee),
        "card_id": event.card_id,
        "channel": None if event.channel_id is None else {"id": event.channel_id, "kind": event.channel_kind},
        "device": event.device, "os": event.os, "browser": event.browser,
    }


def check_events(names: list[str] | tuple[str, ...], kind: str) -> tuple[str, ...]:
    """The subscribed event types, deduplicated in the documented order; a chat endpoint takes none."""
    if kind not in KINDS:
        raise ValidationError("endpoint kind must be one of %(kinds)s, got %(kind)r", kinds=", ".join(KINDS), kind=kind)
    if kind == CHAT:
        if names:
            raise ValidationError("a chat endpoint takes no events: employees opt in to it on /me")
        return ()
    unknown = sorted(set(names) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError("unknown event type %(type)r; known: %(known)s", type=unknown[0],
                              known=", ".join(EVENT_TYPES))
    if not names:
        raise ValidationError("name at least one event type")
    return tuple(e for e in EVENT_TYPES if e in names)


def new_nonce() -> bytes:
    return secrets.token_bytes(16)


def endpoint_secret(server_secret: bytes, nonce: bytes) -> str:
    """The endpoint's signing secret, ``whsec_`` + base64 of 32 bytes (what the receiver is given once)."""
    key = hmac.new(server_secret, b"webhook endpoint" + nonce, hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(key).decode("ascii")


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def body(event_type: str, at: datetime, data: Mapping[str, Any]) -> str:
    """The JSON body, fixed once at enqueue time: a retry sends (and signs) exactly the same bytes."""
    return json.dumps({"type": event_type, "timestamp": iso(at), "data": data}, ensure_ascii=False,
                      separators=(",", ":"), sort_keys=True)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def signed_headers(secret: str, message_id: str, timestamp: int, payload: str) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (``timestamp``: Unix seconds of the attempt)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{message_id}.{timestamp}.{payload}".encode(), hashlib.sha256).digest()
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode("ascii")}


def retry_delay(attempts: int, rand: Callable[[], float]) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt (1, 2, ...); ``rand()`` is in [0, 1)."""
    base: timedelta = min(FIRST_RETRY * (2 ** min(attempts - 1, 20)), MAX_RETRY)
    return base * (0.5 + rand() / 2)


@dataclass(frozen=True)
class ChatLine:
    """What a salesperson is told: whose card, what the customer did, when. Nothing about the customer."""

    employee_name: str
    event_type: str
    at: datetime


def chat_line(payload: str) -> ChatLine | None:
    """The chat line of a scan message's body, or None for any other message."""
    message = json.loads(payload)
    if message.get("type") not in CHAT_EVENTS and message.get("type") != TEST_EVENT:
        return None
    data = message.get("data", {})
    employee = data.get("employee") or {}
    return ChatLine(str(employee.get("name", "")), str(message["type"]),
                    datetime.fromisoformat(str(message["timestamp"]).replace("Z", "+00:00")))


def chat_text(line: ChatLine, now: datetime) -> str:
    """Japanese first, English second, as the rest of the product; the age is counted when it is sent."""
    minutes = max(0, int((now - line.at).total_seconds() // 60))
    if line.event_type == TEST_EVENT:
        return "contactcard: テスト通知です。/ This is a test notification."
    ago_ja = "たった今" if minutes == 0 else f"{minutes}分前に"
    ago_en = "just now" if minutes == 0 else f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    who = f"{line.employee_name}さん: " if line.employee_name else ""
    if line.event_type == SCAN_VCARD_SAVED:
        return f"{who}お客さまが{ago_ja}連絡先を保存しました。/ A customer saved your contact {ago_en}."
    return f"{who}お客さまが{ago_ja}連絡先のボタンをタップしました。/ A customer tapped one of your channels {ago_en}."
