"""Demo data: a sample company with two employees, each with a live card. Safe to run again.

``seed`` only adds what is missing (matching employees by email and channels by kind and target), so a
second run neither fails nor duplicates. It refuses a database that already holds another company, so a
demo never lands in a real deployment's data.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import policy
from .models import ChannelKind, Company, Conflict, Employee, EmployeeProfile, EmployeeStatus, IssuedCard, NotFound
from .service import Service

ADMIN_EMAIL = "admin@example.co.jp"
ACTOR = "demo"  # the audit trail's actor for everything the demo writes

COMPANY = Company(
    name="株式会社サンプル商事",
    name_en="Sample Trading Co., Ltd.",
    logo_sha=None,
    brand_color="#0b5cad",
    business_hours="平日 9:00–18:00（土日祝休み）",
    business_hours_en="Weekdays 9:00–18:00 (closed weekends and holidays)",
    timezone="Asia/Tokyo",
    default_card_days=90,
    retention_days=400,
    allow_email_domains=("example.co.jp",),
    allow_phone_prefixes=("+813",),
    allow_line_ids=("@sample-shoji",),
    allow_line_works_domains=("sample-shoji",),
)

GENERAL_CHANNELS = {
    ChannelKind.PHONE: "tel:03-1234-5678",
    ChannelKind.EMAIL: "mailto:info@example.co.jp",
    ChannelKind.WEB: "https://www.example.co.jp/",
}


@dataclass(frozen=True)
class DemoEmployee:
    profile: EmployeeProfile
    channels: tuple[tuple[ChannelKind, str], ...]


EMPLOYEES = (
    DemoEmployee(
        EmployeeProfile(email="taro.yamada@example.co.jp", family_name="山田", given_name="太郎", family_kana="ヤマダ",
                        given_kana="タロウ", latin_name="Taro Yamada", department="営業部", title="課長"),
        channels=(
            (ChannelKind.LINE, "https://line.me/R/ti/p/@sample-shoji"),
            (ChannelKind.PHONE, "tel:03-1234-5679"),
            (ChannelKind.EMAIL, "mailto:taro.yamada@example.co.jp"),
            (ChannelKind.BOOKING, "https://www.example.co.jp/booking/yamada"),
        ),
    ),
    DemoEmployee(
        EmployeeProfile(email="hanako.sato@example.co.jp", family_name="佐藤", given_name="花子", family_kana="サトウ",
                        given_kana="ハナコ", latin_name="Hanako Sato", department="カスタマーサポート部", title="主任"),
        channels=(
            (ChannelKind.LINE, "https://line.me/R/ti/p/@sample-shoji"),
            (ChannelKind.PHONE, "tel:03-1234-5680"),
            (ChannelKind.EMAIL, "mailto:hanako.sato@example.co.jp"),
            (ChannelKind.BOOKING, "https://www.example.co.jp/booking/sato"),
        ),
    ),
)


async def seed(service: Service) -> list[IssuedCard]:
    """Create whatever of the demo is missing; return the current card of each active demo employee."""
    await _seed_company(service)
    cards = []
    for spec in EMPLOYEES:
        employee = await _seed_employee(service, spec)
        if employee.status is EmployeeStatus.DEPARTED:
            continue  # someone tried the departure flow on the demo; their link now hands over
        await _seed_channels(service, employee, spec)
        cards.append(await _live_card(service, employee))
    return cards


async def _seed_company(service: Service) -> None:
    if not await service.is_configured():
        await service.save_company(COMPANY, general=dict(GENERAL_CHANNELS), actor=ACTOR)
    elif (stored := await service.company()).name != COMPANY.name:
        raise Conflict(f"this database already belongs to {stored.name!r}; "
                       "run the demo against a fresh database (set CONTACTCARD_DB)")


async def _seed_employee(service: Service, spec: DemoEmployee) -> Employee:
    try:
        return await service.find_employee(spec.profile.email)
    except NotFound:
        return await service.add_employee(spec.profile, actor=ACTOR)


async def _seed_channels(service: Service, employee: Employee, spec: DemoEmployee) -> None:
    existing = {(c.kind, c.target) for c in await service.channels(employee.id)}
    for kind, target in spec.channels:
        if (kind, policy.clean_target(kind, target)) not in existing:
            await service.add_channel(employee.id, kind, target, actor=ACTOR)


async def _live_card(service: Service, employee: Employee) -> IssuedCard:
    current = await service.current_card(employee.id)
    if current is None:
        return await service.issue_card(employee.id, actor=ACTOR)
    if not current.card.is_live(service.clock()):
        return await service.extend_card(employee.id, actor=ACTOR)
    return current
