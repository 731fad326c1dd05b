"""Output of the ``contactcard`` CLI: JSON objects and plain-text lines (the scan CSV is in ``csvexport``).

Pure functions over the domain values; nothing here touches the store or the service.
JSON keys are part of the CLI's scripting contract: add keys, never rename or drop them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..models import Card, Channel, Company, Employee, EmployeeStatus, IssuedCard
from ..reports import ExpiringCard
from ..service import local_time
from ..store import EventRow

Json = dict[str, Any]



def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def iso(when: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, to the second."""
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local(company: Company, when: datetime) -> str:
    return f"{local_time(company, when):%Y-%m-%d %H:%M} {company.timezone}"


def printable(text: str) -> str:
    """Untrusted text (user agents, referrers) made safe to print on a terminal: no escapes, no controls."""
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


# --- JSON objects ---------------------------------------------------------------------------------


def channel_json(channel: Channel) -> Json:
    return {"id": channel.id, "kind": channel.kind.value, "target": channel.target, "label": channel.label,
            "position": channel.position, "employee_id": channel.employee_id}


def company_json(company: Company, *, configured: bool) -> Json:
    return {
        "configured": configured,
        "name": company.name,
        "name_en": company.name_en,
        "brand_color": company.brand_color,
        "business_hours": company.business_hours,
        "business_hours_en": company.business_hours_en,
        "timezone": company.timezone,
        "default_card_days": company.default_card_days,
        "retention_days": company.retention_days,
        "leads_enabled": company.leads_enabled,
        "preview_photo": company.preview_photo,
        "policy": {
            "email_domains": list(company.allow_email_domains),
            "phone_prefixes": list(company.allow_phone_prefixes),
            "line_ids": list(company.allow_line_ids),
            "line_works_domains": list(company.allow_line_works_domains),
            "web_hosts": list(company.allow_web_hosts),
        },
        "channels": [channel_json(c) for c in company.channels],
    }


def employee_json(employee: Employee, successor: Employee | None = None) -> Json:
    return {
        "id": employee.id,
        "email": employee.email,
        "name": employee.display_name,
        "family_name": employee.family_name,
        "given_name": employee.given_name,
        "family_kana": employee.family_kana,
        "given_kana": employee.given_kana,
        "latin_name": employee.latin_name,
        "title": employee.title,
        "department": employee.department,
        "status": employee.status.value,
        "successor_id": employee.successor_id,
        "successor": None if successor is None else successor.email,
        "created_at": iso(employee.created_at),
    }


def card_status(card: Card, employee: Employee | None, now: datetime) -> str:
    """live, expired, revoked or departed: what the link does now (a departed employee's links all hand over)."""
    if card.revoked_reason == "departed" or (employee is not None and employee.status is EmployeeStatus.DEPARTED):
        return "departed"
    if card.revoked_at is not None:
        return "revoked"
    return "expired" if now >= card.expires_at else "live"


def card_json(issued: IssuedCard, employee: Employee | None, now: datetime) -> Json:
    card = issued.card
    return {
        "card_id": card.id,
        "employee": None if employee is None else employee.email,
        "employee_id": card.employee_id,
        "generation": card.generation,
        "label": card.label,
        "url": issued.url,
        "status": card_status(card, employee, now),
        "created_at": iso(card.created_at),
        "expires_at": iso(card.expires_at),
        "revoked_at": iso(card.revoked_at),
        "revoked_reason": card.revoked_reason,
    }


def event_json(event: EventRow) -> Json:
    return {
        "id": event.id,
        "time": iso(event.time),
        "outcome": event.outcome.value,
        "employee": event.employee_email,
        "channel": event.channel_kind,
        "card_id": event.card_id,
        "user_agent": event.user_agent,
        "referrer": event.referrer,
        "accept_language": event.accept_language,
        "visitor": event.visitor_key or None,
        "is_bot": event.is_bot,  # a link-preview fetcher or crawler: recorded, never counted as a person
        "device": event.device,
        "os": event.os,
        "browser": event.browser,
    }


# --- plain text ----------------------------------------------------------------------------------


def company_lines(company: Company, *, configured: bool) -> list[str]:
    lines = [] if configured else ["(no company profile yet; set one with: contactcard company set --name ...)"]
    lines += [
        f"name: {company.name}",
        f"name_en: {company.name_en}",
        f"brand_color: {company.brand_color}",
        f"hours: {company.business_hours}",
        f"hours_en: {company.business_hours_en}",
        f"timezone: {company.timezone}",
        f"card_days: {company.default_card_days}",
        f"retention_days: {company.retention_days}",
        f"leads: {'on' if company.leads_enabled else 'off'}",
        f"preview_photo: {'on' if company.preview_photo else 'off'}",
    ]
    policy = (("allow_email_domain", company.allow_email_domains),
              ("allow_phone_prefix", company.allow_phone_prefixes),
              ("allow_line_id", company.allow_line_ids),
              ("allow_line_works_domain", company.allow_line_works_domains),
              ("allow_web_host", company.allow_web_hosts))
    for key, values in policy:
        lines.append(f"{key}: {', '.join(values) if values else '-'}")
    if not company.has_policy:
        lines.append("policy: none (any well-formed target is accepted)")
    lines += [channel_line(c) for c in company.channels]
    return lines


def channel_line(channel: Channel) -> str:
    label = f"  ({channel.label})" if channel.label else ""
    return f"channel {channel.id}: {channel.kind.value} {channel.target}{label}"


def employee_line(employee: Employee) -> str:
    role = " / ".join(p for p in (employee.department, employee.title) if p)
    departed = "" if employee.status is EmployeeStatus.ACTIVE else "  [departed]"
    return f"{employee.id}\t{employee.email}\t{employee.display_name}\t{role or '-'}{departed}"


def card_line(issued: IssuedCard, employee: Employee | None, now: datetime) -> str:
    card = issued.card
    who = employee.email if employee is not None else str(card.employee_id)
    return (f"{who}\tgen {card.generation}\t{card_status(card, employee, now)}\t"
            f"expires {iso(card.expires_at)}\t{issued.url}")


def expiring_json(expiring: ExpiringCard) -> Json:
    card = expiring.card
    return {"card_id": card.id, "employee": expiring.employee.email, "employee_id": card.employee_id,
            "generation": card.generation, "label": card.label, "expires_at": iso(card.expires_at)}


def expiring_line(expiring: ExpiringCard) -> str:
    card = expiring.card
    return f"{expiring.employee.email}\tgen {card.generation}\texpires {iso(card.expires_at)}"


def event_line(event: EventRow) -> str:
    visitor = event.visitor_key[:8] or "-"
    return "\t".join((iso(event.time) or "", event.outcome.value, event.employee_email or "-",
                      event.channel_kind or "-", visitor, printable(event.user_agent) or "-"))
