"""/me: the employee's own QR, link, expiry and scans; rotation of their own card only; the installable app."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import zxingcpp
from PIL import Image
from starlette.testclient import TestClient

from contactcard.models import EmployeeProfile, Outcome, ScanEvent

from .accounts_kit import accounts, csrf_of, login, make_admin, make_employee, seed_two
from .conftest import FakeClock, Harness


def qr_urls(html: str) -> list[str]:
    return re.findall(r'src="(/me/qr/\d+-\d+\.svg)"', html)


def test_signed_out_visitor_is_sent_to_sign_in(harness: Harness) -> None:
    for path in ("/me", "/me/qr/1-1.svg", "/me/qr/1-1.png"):
        r = harness.client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=" + path
    assert harness.client.post("/me/rotate").status_code in (303, 403)


def test_me_shows_only_my_card_with_link_expiry_and_counts(harness: Harness, clock: FakeClock) -> None:
    taro_card, hanako_card = seed_two(harness)
    taro = make_employee(harness)
    make_employee(harness, "hanako@example.co.jp")
    for _ in range(3):
        harness.client.get(harness.path(taro_card))
    harness.client.get(harness.path(hanako_card))
    login(harness.client, taro.email)
    r = harness.client.get("/me", headers={"accept-language": "ja"})
    assert r.status_code == 200
    assert taro_card.url in r.text and hanako_card.url not in r.text and "佐藤" not in r.text
    assert qr_urls(r.text) == [f"/me/qr/{taro_card.card.id}-{taro_card.card.generation}.svg"]
    assert r.headers["x-card-qr"] == qr_urls(r.text)[0] and r.headers["x-card-state"] == "live"
    assert "no-store" in r.headers["cache-control"]
    # 90 days from 2026-11-28 01:00 UTC is 2027-02-26 10:00 in Tokyo.
    assert "2027-02-26 10:00 (Asia/Tokyo)" in r.text
    counts = re.findall(r"<dd>(\d+)</dd>", r.text)
    assert counts == ["3", "3", "3"]
    clock.advance(days=1)
    login(harness.client, taro.email)  # a day is past the 8-hour idle limit
    counts = re.findall(r"<dd>(\d+)</dd>", harness.client.get("/me").text)
    assert counts == ["0", "3", "3"]
    assert "<script" not in r.text.replace('<script src="/static/me.js?v=3" defer></script>', "")


def test_me_warns_when_my_link_is_about_to_expire(harness: Harness, clock: FakeClock) -> None:
    harness.seed()  # a 90-day link: the company's notice is 14 days
    taro = make_employee(harness)
    login(harness.client, taro.email)
    assert "me-expiring" not in harness.client.get("/me", headers={"accept-language": "ja"}).text
    clock.advance(days=76, hours=1)  # 13 days and 23 hours left
    login(harness.client, taro.email)
    ja = harness.client.get("/me", headers={"accept-language": "ja"}).text
    assert "リンクの有効期限が近づいています" in ja and "管理者に延長を依頼してください" in ja
    en = harness.client.get("/me", headers={"accept-language": "en"}).text
    assert "Your link expires soon" in en and "2027-02-26 10:00 (Asia/Tokyo)" in en
    harness.run(harness.service.extend_card, "taro@example.co.jp", days=30, actor="cli")
    assert "me-expiring" not in harness.client.get("/me").text
    clock.advance(days=31)
    login(harness.client, taro.email)
    expired = harness.client.get("/me", headers={"accept-language": "en"}).text
    assert "Your link has expired" in expired and "me-expiring" not in expired


def test_my_qr_decodes_to_my_link_and_caches_by_generation(harness: Harness) -> None:
    issued = harness.seed()
    taro = make_employee(harness)
    login(harness.client, taro.email)
    png_path = f"/me/qr/{issued.card.id}-{issued.card.generation}.png"
    r = harness.client.get(png_path)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "immutable" in r.headers["cache-control"] and "private" in r.headers["cache-control"]
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(r.content)))
    assert [d.text for d in decoded] == [issued.url]
    again = harness.client.get(png_path, headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    svg = harness.client.get(png_path.replace(".png", ".svg"))
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")


def test_an_employee_cannot_reach_another_card_by_changing_ids(harness: Harness) -> None:
    taro_card, hanako_card = seed_two(harness)
    taro = make_employee(harness)
    login(harness.client, taro.email)
    other = hanako_card.card
    for path in (f"/me/qr/{other.id}-{other.generation}.svg", f"/me/qr/{other.id}-{other.generation}.png",
                 f"/me/qr/{taro_card.card.id}-{taro_card.card.generation + 1}.svg", "/me/qr/999-1.svg",
                 "/me/qr/1-1.gif", "/me/qr/..%2F..%2Fsecret.key", f"/me/qr/{other.id}-{other.generation}.svg?x=1"):
        r = harness.client.get(path)
        assert r.status_code in (403, 404), path
        assert hanako_card.url not in r.text
    # A form cannot name someone else: the rotate route takes no id, extra fields are ignored.
    csrf = csrf_of(harness.client.get("/me").text)
    r = harness.client.post("/me/rotate", data={"csrf": csrf, "employee": "hanako@example.co.jp",
                                                "employee_id": str(other.employee_id), "days": "3650"})
    assert r.status_code == 303
    assert harness.run(harness.service.current_card, "hanako@example.co.jp") == hanako_card
    mine = harness.run(harness.service.current_card, "taro@example.co.jp")
    assert mine is not None and mine.card.generation == 2
    assert mine.card.expires_at - mine.card.created_at == taro_card.card.expires_at - taro_card.card.created_at, \
        "no say in the lifetime: an employee cannot extend"
    for path in ("/me/extend", "/me/revoke", f"/me/rotate/{other.employee_id}"):
        assert harness.client.post(path, data={"csrf": csrf}).status_code in (403, 404, 405), path


def test_rotating_my_card_kills_the_old_link_and_qr_and_is_audited(harness: Harness) -> None:
    issued = harness.seed()
    taro = make_employee(harness)
    login(harness.client, taro.email)
    page = harness.client.get("/me")
    old_qr = qr_urls(page.text)[0]
    r = harness.client.post("/me/rotate", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"].startswith("/me")
    fresh = harness.client.get("/me")
    new_qr = qr_urls(fresh.text)[0]
    assert new_qr != old_qr and fresh.headers["x-card-qr"] == new_qr
    assert issued.url not in fresh.text
    assert harness.client.get(old_qr).status_code == 404, "a rotated generation is never served again"
    assert harness.client.get(harness.path(issued)).status_code == 410
    rows = harness.run(harness.service._store.audit_events, action="card.rotate")
    assert [(a.actor, a.target) for a in rows] == [(taro.email, f"card:{issued.card.id + 1}")]


def test_revoked_card_leaves_no_qr_and_says_when_and_whom_to_ask(harness: Harness, clock: FakeClock) -> None:
    issued = harness.seed()
    taro = make_employee(harness)
    login(harness.client, taro.email)
    qr = qr_urls(harness.client.get("/me").text)[0]
    clock.advance(hours=2)  # revoked at 2026-11-28 03:00 UTC: noon in Tokyo
    harness.run(harness.service.revoke_card, "taro@example.co.jp", actor="cli")
    r = harness.client.get("/me", headers={"accept-language": "en"})
    assert r.status_code == 200 and r.headers["x-card-qr"] == "" and r.headers["x-card-state"] == "revoked"
    assert qr_urls(r.text) == [] and issued.url not in r.text
    assert "Your card was revoked" in r.text and "no contact link yet" not in r.text
    assert "revoked your card on 2026-11-28 12:00 (Asia/Tokyo)" in r.text and "ask an administrator" in r.text
    ja = harness.client.get("/me?lang=ja").text
    assert "2026-11-28 12:00 (Asia/Tokyo) に管理者があなたの名刺リンクを無効にしました" in ja
    assert "管理者に新しい名刺リンクの発行を依頼してください" in ja
    assert harness.client.get(qr).status_code == 404
    conflict = harness.client.post("/me/rotate", data={"csrf": csrf_of(r.text)})
    assert conflict.status_code == 409


def test_an_employee_who_never_had_a_card_is_told_to_ask_for_one(harness: Harness) -> None:
    harness.seed()
    harness.run(harness.service.add_employee, EmployeeProfile(email="hanako@example.co.jp", family_name="佐藤"),
                actor="cli")
    hanako = make_employee(harness, "hanako@example.co.jp")
    login(harness.client, hanako.email)
    r = harness.client.get("/me", headers={"accept-language": "en"})
    assert r.headers["x-card-state"] == "none" and "You have no contact link yet" in r.text
    assert "revoked" not in r.text and "expired" not in r.text


def test_expired_card_offers_a_fresh_link_not_a_dead_qr(harness: Harness, clock: FakeClock) -> None:
    harness.seed()
    taro = make_employee(harness)
    clock.advance(days=91)
    login(harness.client, taro.email)
    r = harness.client.get("/me", headers={"accept-language": "en"})
    assert r.headers["x-card-state"] == "expired" and qr_urls(r.text) == []
    assert "Get a fresh link" in r.text and "It expired on 2027-02-26 10:00 (Asia/Tokyo)." in r.text
    assert "revoked" not in r.text
    harness.client.post("/me/rotate", data={"csrf": csrf_of(r.text)})
    assert harness.client.get("/me").headers["x-card-state"] == "live"


def test_an_admin_without_an_employee_sees_a_clear_message(harness: Harness) -> None:
    admin = make_admin(harness)
    login(harness.client, admin.email)
    r = harness.client.get("/me", headers={"accept-language": "en"})
    assert r.status_code == 200 and "No contact card on this account" in r.text
    assert harness.client.post("/me/rotate", data={"csrf": csrf_of(r.text)}).status_code == 403


def test_installable_manifest_icons_and_service_worker(harness: Harness) -> None:
    client: TestClient = harness.client
    m = client.get("/manifest.webmanifest")
    assert m.status_code == 200 and m.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(m.text)
    assert manifest["start_url"] == "/me" and manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        r = client.get(icon["src"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(r.content))
        assert f"{image.width}x{image.height}" == icon["sizes"]
    sw = client.get("/sw.js")
    assert sw.status_code == 200 and sw.headers["content-type"].startswith("text/javascript")
    assert sw.headers["service-worker-allowed"] == "/" and sw.headers["cache-control"] == "no-cache"
    assert "X-Card-QR" in sw.text
    assert client.get("/icons/icon-64.png").status_code == 404


def test_scan_counts_count_scans_as_the_console_does(harness: Harness) -> None:
    issued = harness.seed()
    harness.client.get(harness.path(issued))
    harness.client.get(harness.path(issued) + "/vcard")
    employee = harness.run(harness.service.find_employee, "taro@example.co.jp")
    counts = harness.run(harness.service.scan_counts, employee.id)
    assert (counts.today, counts.week, counts.month) == (1, 1, 1), "a saved contact is not a scan"
    harness.run(harness.service.rotate_card, employee.id, actor="cli")
    assert harness.client.get(harness.path(issued)).status_code == 410  # the old QR, still a scan of theirs
    counts = harness.run(harness.service.scan_counts, employee.id)
    assert (counts.today, counts.week, counts.month) == (2, 2, 2)
    assert harness.run(harness.service.stats, employee_id=employee.id).total.scans == 2, "one definition"
    assert [e.outcome for e in harness.events()] == [Outcome.VIEW, Outcome.VCARD, Outcome.REVOKED]
    assert accounts(harness) is not None


def test_me_counts_are_the_consoles_figures_by_local_day(harness: Harness, employee_client: TestClient) -> None:
    """Today, 7 and 30 days on /me are local days from the daily totals: what the dashboard ranks and what
    ``scans stats`` adds up for the same employee, not rolling 24-hour windows."""
    taro = harness.run(harness.service.find_employee, "taro@example.co.jp")
    # the clock is 2026-11-28 01:00 UTC = 10:00 in Tokyo: today there began at 11-27 15:00 UTC
    events = [ScanEvent(time=datetime(2026, 11, 28, 0, 30, tzinfo=UTC), outcome=Outcome.VIEW, employee_id=taro.id),
              ScanEvent(time=datetime(2026, 11, 28, 0, 40, tzinfo=UTC), outcome=Outcome.VIEW, employee_id=taro.id,
                        is_bot=True),
              ScanEvent(time=datetime(2026, 11, 27, 14, 0, tzinfo=UTC), outcome=Outcome.VIEW, employee_id=taro.id),
              # 11-21 11:00 in Tokyo: inside a rolling 7 x 24 hours, outside the last 7 local days
              ScanEvent(time=datetime(2026, 11, 21, 2, 0, tzinfo=UTC), outcome=Outcome.VIEW, employee_id=taro.id),
              # 10-29 19:00 in Tokyo: inside a rolling 30 x 24 hours, outside the last 30 local days
              ScanEvent(time=datetime(2026, 10, 29, 10, 0, tzinfo=UTC), outcome=Outcome.VIEW, employee_id=taro.id)]

    async def insert() -> None:
        async with harness.service._store.transaction():
            await harness.service._store.insert_events(events)

    harness.run(insert)
    html = employee_client.get("/me", headers={"accept-language": "en"}).text
    shown = dict(re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", html))
    assert shown == {"Today": "1", "7 days": "2", "30 days": "3"}
    svc = harness.service
    ranked = {row.employee.id: row.count for row in harness.run(svc.dashboard).top}
    assert ranked[taro.id] == 3, "the dashboard's 30-day ranking counts what /me does"
    for days, label in ((1, "Today"), (7, "7 days"), (30, "30 days")):
        assert harness.run(svc.stats, employee_id=taro.id, days=days).total.scans == int(shown[label])
