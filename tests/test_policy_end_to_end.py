"""The channel policy through the real surfaces: the console forms refuse the review's bypasses and save nothing,
the web allow-list is editable on the settings page, and a channel stored before the rules were tightened never
reaches a customer (page, vCard, redirect, the company's 404/410 pages)."""

from __future__ import annotations

import re

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from contactcard.models import ChannelKind

from .accounts_kit import csrf_of
from .conftest import FakeClock, Harness

TARO = "taro@example.co.jp"
GO_LINK = re.compile(r'href="(/c/[^"]+/go/\d+)"')

# The review's reproductions (findings 1, 2, 5 and 12), with the seeded company's own ids (@sample,
# example.co.jp, +813) where the review used @acme.
BYPASSES = [
    ("web", "https://ｌｉｎｅ.me/ti/p/~taro_private"),
    ("custom", "https://line.me./ti/p/~taro_private"),
    ("booking", "https://line%2eme/ti/p/~taro_private"),
    ("web", "https://line。me/ti/p/~taro_private"),
    ("web", "https://web.whatsapp.com/send?phone=819012345678"),
    ("custom", "https://timeline.line.me/user/taro_private"),
    ("email", "mailto:taro.private%40gmail.com%2Ctaro@example.co.jp"),
    ("line", "https://line.me/R/ti/p/~taro_private/@sample"),
    ("line", "https://line.me/R/ti/p/%7Etaro_private%2F%40sample"),
    ("line", "https://liff.line.me/1657000000-abcdefgh/@sample"),
    ("web", "https://google.com/url?q=https://line.me/ti/p/~taro_private"),
    ("booking", "https://bit.ly/3xYzAbC"),
    ("custom", "https://t.me/taro_private"),
    ("web", "https://mail.google.com/mail/?view=cm&to=taro.private@gmail.com"),
    ("web", "https://www.google.com/amp/s/line.me/ti/p/~taro_private"),  # variants the review did not try
    ("booking", "https://line-me.translate.goog/ti/p/~taro_private"),
]


def post(client: TestClient, url: str, data: dict[str, str]) -> httpx.Response:
    """A console form, answered in English (tests/test_admin_pages checks the Japanese messages)."""
    return client.post(url, data={"csrf": csrf_of(client.get("/admin").text), **data},
                       headers={"accept-language": "en"})


@pytest.fixture
def seeded(harness: Harness, admin_client: TestClient) -> Harness:
    harness.seed()
    return harness


def _store_raw(h: Harness, employee_id: int | None, kind: ChannelKind, target: str) -> int:
    """Save a channel the way an older, laxer version did: straight into the database, no checks."""
    store = h.service._store

    async def write() -> int:
        async with store.transaction():
            return await store.add_channel(employee_id, kind, target, "")

    channel_id = h.run(write)
    h.service.invalidate()
    return channel_id


@pytest.mark.parametrize(("kind", "target"), BYPASSES)
def test_console_refuses_each_bypass_and_saves_nothing(seeded: Harness, kind: str, target: str) -> None:
    taro = seeded.run(seeded.service.find_employee, TARO)
    before = seeded.run(seeded.service.channels, taro.id)
    audit = len(seeded.run(seeded.service._store.audit_events, limit=1000))
    r = post(seeded.client, f"/admin/employees/{taro.id}/channels", {"kind": kind, "target": target})
    assert r.status_code == 400
    assert "form-error" in r.text
    general = post(seeded.client, "/admin/settings/channels", {"kind": kind, "target": target})
    assert general.status_code == 400
    assert seeded.run(seeded.service.channels, taro.id) == before
    assert len(seeded.run(seeded.service.channels, None)) == 2
    assert len(seeded.run(seeded.service._store.audit_events, limit=1000)) == audit


def test_a_disguised_company_link_is_stored_as_the_browser_reads_it(seeded: Harness) -> None:
    taro = seeded.run(seeded.service.find_employee, TARO)
    r = post(seeded.client, f"/admin/employees/{taro.id}/channels",
             {"kind": "line", "target": "https://ｌｉｎｅ。me./R/ti/p/@SAMPLE"})
    assert r.status_code == 303
    assert seeded.run(seeded.service.channels, taro.id)[-1].target == "https://line.me/R/ti/p/@SAMPLE"


def test_channels_stored_before_the_tightening_never_reach_a_customer(seeded: Harness) -> None:
    issued = seeded.run(seeded.service.current_card, TARO)
    assert issued is not None
    taro = seeded.run(seeded.service.find_employee, TARO)
    stored = [_store_raw(seeded, taro.id, ChannelKind(kind), target) for kind, target in BYPASSES]
    page = seeded.client.get(seeded.path(issued), headers={"accept-language": "en"})
    assert page.status_code == 200
    assert len(GO_LINK.findall(page.text)) == 3, "only the seeded LINE, phone and email"
    assert "taro_private" not in page.text and "gmail" not in page.text
    vcard = seeded.client.get(seeded.path(issued) + "/vcard").text
    assert "gmail" not in vcard and "taro_private" not in vcard and "bit.ly" not in vcard
    for channel_id in stored:
        assert seeded.client.get(f"{seeded.path(issued)}/go/{channel_id}").status_code == 404


def test_general_channels_stored_before_the_tightening_are_not_on_the_410_and_404_pages(
        seeded: Harness, clock: FakeClock) -> None:
    issued = seeded.run(seeded.service.current_card, TARO)
    assert issued is not None
    stored = [_store_raw(seeded, None, ChannelKind.WEB, "https://ｌｉｎｅ.me/ti/p/~taro_private"),
              _store_raw(seeded, None, ChannelKind.EMAIL, "mailto:taro.private%40gmail.com%2Cinfo@example.co.jp")]
    unknown = seeded.client.get("/c/AAAAAAAAAAAAAAAAAAAA")
    assert unknown.status_code == 404
    assert len(GO_LINK.findall(unknown.text)) == 2, "the general phone and email only"
    clock.advance(days=91)
    expired = seeded.client.get(seeded.path(issued))
    assert expired.status_code == 410
    links = GO_LINK.findall(expired.text)
    assert len(links) == 2 and "line.me" not in expired.text and "gmail" not in expired.text
    for channel_id in stored:
        go = seeded.client.get(f"{seeded.path(issued)}/go/{channel_id}")
        assert go.status_code == 410 and "location" not in go.headers, "the dead link's page, no redirect"


def _settings(**over: str) -> dict[str, str]:
    base = {"name": "株式会社サンプル", "name_en": "Sample K.K.", "brand_color": "#0b5cad",
            "business_hours": "", "business_hours_en": "", "timezone": "Asia/Tokyo",
            "default_card_days": "90", "retention_days": "400", "allow_email_domains": "example.co.jp",
            "allow_phone_prefixes": "+813", "allow_line_ids": "@sample", "allow_line_works_domains": "",
            "allow_web_hosts": ""}
    return {**base, **over}


def test_web_allow_list_is_shown_and_edited_on_the_settings_page(seeded: Harness) -> None:
    r = post(seeded.client, "/admin/settings", _settings(allow_web_hosts="Example.co.jp\nhttps://ＢＯＯＫ.example.jp/x"))
    assert r.status_code == 303
    assert seeded.run(seeded.service.company).allow_web_hosts == ("example.co.jp", "book.example.jp")
    page = seeded.client.get("/admin/settings").text
    assert re.search(r'<textarea id="allow_web_hosts" name="allow_web_hosts"[^>]*>example.co.jp\nbook.example.jp<',
                     page)
    taro = seeded.run(seeded.service.find_employee, TARO)
    refused = post(seeded.client, f"/admin/employees/{taro.id}/channels",
                   {"kind": "booking", "target": "https://calendly.com/taro"})
    assert refused.status_code == 400 and "not one of the company&#39;s web hosts" in refused.text
    accepted = post(seeded.client, f"/admin/employees/{taro.id}/channels",
                    {"kind": "booking", "target": "https://www.example.co.jp/booking/taro"})
    assert accepted.status_code == 303


@pytest.mark.parametrize(("entry", "message"), [
    ("bit.ly", "link shortener"),
    ("t.me", "personal messenger"),
    ("not a host", "not a valid host name"),
    ("localhost", "not a full host name"),
])
def test_settings_refuse_an_allow_list_entry_that_cannot_be_a_company_host(
        seeded: Harness, entry: str, message: str) -> None:
    r = post(seeded.client, "/admin/settings", _settings(allow_web_hosts=entry))
    assert r.status_code == 400 and message in r.text
    assert seeded.run(seeded.service.company).allow_web_hosts == ()


def test_console_refuses_a_personal_contact_in_a_label_title_or_department(seeded: Harness) -> None:
    taro = seeded.run(seeded.service.find_employee, TARO)
    before = seeded.run(seeded.service.channels, taro.id)
    r = post(seeded.client, f"/admin/employees/{taro.id}/channels",
             {"kind": "phone", "target": "03-1234-9999", "label": "個人LINE: taro_private / 090-1234-5678"})
    assert r.status_code == 400 and "the label must not carry" in r.text
    assert seeded.run(seeded.service.channels, taro.id) == before
    r = post(seeded.client, f"/admin/employees/{taro.id}",
             {"family_name": "山田", "given_name": "太郎", "email": TARO, "title": "LINE ID taro_private"})
    assert r.status_code == 400 and "the title must not carry" in r.text
    r = post(seeded.client, "/admin/employees/new",
             {"family_name": "佐藤", "email": "hanako@example.co.jp", "department": "営業部 hanako.sato@gmail.com"})
    assert r.status_code == 400 and "the department must not carry" in r.text
    r = post(seeded.client, f"/admin/employees/{taro.id}",
             {"family_name": "山田", "given_name": "太郎 090-1234-5678", "email": TARO})
    assert r.status_code == 400 and "the name must not carry" in r.text
    r = post(seeded.client, f"/admin/employees/{taro.id}",
             {"family_name": "山田", "given_name": "太郎", "email": TARO, "latin_name": "Taro (LINE: taro.private)"})
    assert r.status_code == 400 and "the Latin name must not carry" in r.text
    assert [e.email for e in seeded.run(seeded.service.employees)] == [TARO]
    assert seeded.run(seeded.service.find_employee, TARO).title == "課長"
    assert seeded.run(seeded.service.find_employee, TARO).given_name == "太郎"
    ok = post(seeded.client, f"/admin/employees/{taro.id}/channels",
              {"kind": "line", "target": "https://line.me/R/ti/p/@sample", "label": "LINE公式アカウント"})
    assert ok.status_code == 303


def test_a_label_stored_before_the_tightening_hides_its_channel(seeded: Harness) -> None:
    issued = seeded.run(seeded.service.current_card, TARO)
    assert issued is not None
    taro = seeded.run(seeded.service.find_employee, TARO)
    store = seeded.service._store

    async def write() -> int:
        async with store.transaction():
            return await store.add_channel(taro.id, ChannelKind.PHONE, "tel:+81312349999", "個人LINE: taro_private")

    channel_id = seeded.run(write)
    seeded.service.invalidate()
    page = seeded.client.get(seeded.path(issued)).text
    assert "taro_private" not in page and len(GO_LINK.findall(page)) == 3
    assert "taro_private" not in seeded.client.get(seeded.path(issued) + "/vcard").text
    assert seeded.client.get(f"{seeded.path(issued)}/go/{channel_id}").status_code == 404
