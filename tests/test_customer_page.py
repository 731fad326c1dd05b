"""The customer's side of a link: page, channel redirects, vCard, and every outcome recorded."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import sqlite3
from contextlib import closing

import pytest
import vobject

from contactcard.accounts import SignInRefused
from contactcard.app import create_app
from contactcard.config import Settings
from contactcard.models import ChannelKind, EmployeeProfile, Outcome

from .accounts_kit import accounts
from .conftest import FakeClock, Harness, asgi_get


def test_live_card_shows_person_channels_in_order_and_hours(harness: Harness) -> None:
    issued = harness.seed()
    r = harness.client.get(harness.path(issued), headers={"accept-language": "ja"})
    assert r.status_code == 200
    html = r.text
    assert "山田 太郎" in html and "ヤマダ タロウ" in html and "営業部" in html and "課長" in html
    assert html.index("LINEで友だち追加") < html.index("電話する") < html.index("メールを送る")
    assert "連絡先を保存" in html and "平日 9:00–18:00" in html
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "cache-control" in r.headers and "no-store" in r.headers["cache-control"]
    assert [e.outcome for e in harness.events()] == [Outcome.VIEW]


def test_english_from_accept_language_and_switch_remembered(harness: Harness) -> None:
    issued = harness.seed()
    r = harness.client.get(harness.path(issued), headers={"accept-language": "en-US,en;q=0.9,ja;q=0.5"})
    assert "Add us on LINE" in r.text and "Save contact" in r.text and "Sample K.K." in r.text
    assert '<html lang="en">' in r.text
    r = harness.client.get(harness.path(issued) + "?lang=ja", headers={"accept-language": "en"})
    assert "LINEで友だち追加" in r.text
    r = harness.client.get(harness.path(issued), headers={"accept-language": "en"})
    assert "LINEで友だち追加" in r.text, "the visible switch wins over Accept-Language on later visits"


def test_go_redirects_only_to_the_stored_target_and_records_the_click(harness: Harness) -> None:
    issued = harness.seed()
    page = harness.client.get(harness.path(issued)).text
    links = re.findall(r'href="(/c/[^"]+/go/\d+)"', page)
    assert len(links) == 3
    r = harness.client.get(links[1])
    assert r.status_code == 303
    assert r.headers["location"] == "tel:+81312345679"
    clicks = [e for e in harness.events() if e.outcome is Outcome.CLICK]
    assert [c.channel_kind for c in clicks] == ["phone"]


def test_go_refuses_open_redirects_and_foreign_channels(harness: Harness) -> None:
    issued = harness.seed()
    other = harness.run(harness.service.add_employee, EmployeeProfile(email="hanako@example.co.jp", family_name="佐藤"),
                        actor="cli")
    foreign = harness.run(harness.service.add_channel, other.email, ChannelKind.PHONE, "03-9999-0000", actor="cli")
    base = harness.path(issued)
    for attempt in (f"{base}/go/{foreign.id}", f"{base}/go/999999", f"{base}/go/https:%2F%2Fevil.example",
                    f"{base}/go/%2F%2Fevil.example", f"{base}/go/-1", f"{base}/go/1e3", f"{base}/go/"):
        r = harness.client.get(attempt)
        assert r.status_code == 404, attempt
        assert "location" not in r.headers
    assert all(e.outcome in (Outcome.BAD_CHANNEL, Outcome.MALFORMED) for e in harness.events())


def test_vcard_download_parses_with_an_independent_parser(harness: Harness) -> None:
    issued = harness.seed()
    r = harness.client.get(harness.path(issued) + "/vcard")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/vcard")
    assert "attachment" in r.headers["content-disposition"]
    cards = list(vobject.readComponents(r.content.decode("utf-8")))
    assert len(cards) == 1
    card = cards[0]
    assert card.n.value.family == "山田" and card.n.value.given == "太郎"
    assert card.tel.value == "+81312345679"
    assert card.email.value == "taro@example.co.jp"
    assert issued.url in [u.value for u in card.contents["url"]]
    assert [e.outcome for e in harness.events()] == [Outcome.VCARD]


def test_expired_link_answers_410_with_company_channels_not_the_employee(harness: Harness, clock: object) -> None:
    issued = harness.seed()
    harness.run(harness.service.company)
    from .conftest import FakeClock

    assert isinstance(clock, FakeClock)
    clock.advance(days=90, seconds=1)
    r = harness.client.get(harness.path(issued), headers={"accept-language": "ja"})
    assert r.status_code == 410
    assert "有効期限が切れています" in r.text
    assert "山田" not in r.text and "line.me" not in r.text
    links = re.findall(r'href="(/c/[^"]+/go/\d+)"', r.text)
    assert len(links) == 2, "the company's general phone and email"
    go = harness.client.get(links[0])
    assert go.status_code == 303 and go.headers["location"] == "tel:+81312340000"
    assert [e.outcome for e in harness.events()] == [Outcome.EXPIRED, Outcome.CLICK]


def test_rotation_kills_the_old_link_at_once_and_revocation_too(harness: Harness) -> None:
    issued = harness.seed()
    rotated = harness.run(harness.service.rotate_card, "taro@example.co.jp", actor="cli")
    assert rotated.url != issued.url and rotated.card.generation == issued.card.generation + 1
    assert harness.client.get(harness.path(issued)).status_code == 410
    assert harness.client.get(harness.path(issued) + "/vcard").status_code == 410
    assert harness.client.get(harness.path(rotated)).status_code == 200
    harness.run(harness.service.revoke_card, "taro@example.co.jp", actor="cli")
    r = harness.client.get(harness.path(rotated), headers={"accept-language": "en"})
    assert r.status_code == 410 and "no longer in use" in r.text
    assert [e.outcome for e in harness.events()] == [Outcome.REVOKED, Outcome.REVOKED, Outcome.VIEW, Outcome.REVOKED]


def test_departed_employee_link_introduces_the_successor(harness: Harness) -> None:
    issued = harness.seed()
    svc = harness.service
    harness.run(svc.add_employee, EmployeeProfile(email="hanako@example.co.jp", family_name="佐藤", given_name="花子",
                title="主任"), actor="cli")
    successor_card = harness.run(svc.issue_card, "hanako@example.co.jp", actor="cli")
    harness.run(svc.depart, "taro@example.co.jp", "hanako@example.co.jp", actor="cli")
    r = harness.client.get(harness.path(issued), headers={"accept-language": "ja"})
    assert r.status_code == 410
    assert "佐藤 花子" in r.text and "主任" in r.text
    assert f'href="{successor_card.url}"' in r.text
    assert "山田" not in r.text
    assert harness.events()[-1].outcome is Outcome.DEPARTED


def test_unknown_malformed_and_tampered_tokens_get_404_with_company_channels(harness: Harness) -> None:
    issued = harness.seed()
    token = issued.token
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for path in (f"/c/{tampered}", "/c/short", "/c/" + "x" * 400, "/c/%00%ff", "/c/a/b/c", "/c/"):
        r = harness.client.get(path, headers={"accept-language": "en"})
        assert r.status_code == 404, path
        assert "could not find" in r.text or "Page not found" in r.text
    assert len(harness.events()) == 6
    assert {e.outcome for e in harness.events()} <= {Outcome.UNKNOWN, Outcome.MALFORMED}


def test_thousands_of_random_tokens_all_404_never_500(harness: Harness) -> None:
    import secrets

    harness.seed()
    for _ in range(2000):
        token = secrets.token_urlsafe(15)
        r = harness.client.get(f"/c/{token}")
        assert r.status_code == 404
    # one visitor key: 20 rows a minute, the rest counted, not stored (scans.BadTokenLimiter)
    assert len(harness.events()) == 20
    assert sum(harness.run(harness.service._store.overflow).values()) == 1980


def test_markup_in_names_renders_as_text(harness: Harness) -> None:
    harness.seed()
    svc = harness.service
    harness.run(svc.add_employee, EmployeeProfile(email="x@example.co.jp", family_name="<script>alert(1)</script>",
                title='"><img src=x onerror=alert(1)>', department="R&D"), actor="cli")
    issued = harness.run(svc.issue_card, "x@example.co.jp", actor="cli")
    r = harness.client.get(harness.path(issued))
    assert "<script>alert(1)" not in r.text and "<img src=x" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "R&amp;D" in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp


def test_oversized_and_odd_headers_are_recorded_cropped_never_500(harness: Harness) -> None:
    issued = harness.seed()
    r = harness.client.get(harness.path(issued), headers={
        "user-agent": "A" * 100_000, "referer": "\x7f" * 5000, "accept-language": "q=;;,,*;q=abc," * 500,
    })
    assert r.status_code == 431, "an oversized header is refused (4xx), never a 500"
    event = harness.events()[-1]
    assert event.is_bot and event.outcome is Outcome.VIEW
    assert len(event.user_agent) == 512 and len(event.referrer) <= 512 and len(event.accept_language) <= 128


def test_visitor_key_is_a_pseudonym_and_no_raw_ip_is_stored(harness: Harness, settings: object) -> None:
    issued = harness.seed()
    harness.client.get(harness.path(issued), headers={"user-agent": "PhoneA"})
    harness.client.get(harness.path(issued), headers={"user-agent": "PhoneA"})
    harness.client.get(harness.path(issued), headers={"user-agent": "PhoneB"})
    keys = [e.visitor_key for e in harness.events()]
    assert keys[0] == keys[1] != keys[2]
    from contactcard.config import Settings

    assert isinstance(settings, Settings)
    raw = settings.db_path.read_bytes() + settings.db_path.with_name("cc.sqlite3-wal").read_bytes()
    assert b"testclient" not in raw and b"127.0.0.1" not in raw


def test_a_channel_saved_before_the_policy_was_tightened_is_not_shown(harness: Harness) -> None:
    from dataclasses import replace

    issued = harness.seed()
    svc = harness.service
    company = harness.run(svc.company)
    harness.run(svc.save_company, replace(company, allow_email_domains=(), allow_phone_prefixes=(),
                                          allow_line_ids=()), actor="cli")
    harness.run(svc.add_channel, "taro@example.co.jp", ChannelKind.EMAIL, "taro.private@gmail.com", actor="cli")
    open_page = harness.client.get(harness.path(issued)).text
    assert len(re.findall(r'href="(/c/[^"]+/go/\d+)"', open_page)) == 4
    harness.run(svc.save_company, company, actor="cli")
    page = harness.client.get(harness.path(issued)).text
    assert len(re.findall(r'href="(/c/[^"]+/go/\d+)"', page)) == 3
    private = next(c for c in harness.run(svc.channels, "taro@example.co.jp") if "gmail" in c.target)
    assert harness.client.get(f"{harness.path(issued)}/go/{private.id}").status_code == 404


def test_utf8_headers_are_stored_as_sent_not_garbled(harness: Harness) -> None:
    """Finding 20: user agents (and referrers, languages) were decoded as Latin-1."""
    issued = harness.seed()
    agent = "Mozilla/5.0 (iPhone) Mobile/15E148 ハンディ電話"
    app = harness.client.app
    for path in (harness.path(issued), harness.path(issued) + "?x=1"):  # the fast path and the routed page
        assert harness.run(asgi_get, app, path, [(b"user-agent", agent.encode()), (b"x-junk", b"\xff\xfe"),
                                                 (b"referer", "https://例え.jp/ページ".encode())]) == 200
        event = harness.events()[-1]
        assert (event.user_agent, event.referrer) == (agent, "https://例え.jp/ページ")
        assert harness.run(asgi_get, app, path, [(b"user-agent", b"Broken \xe3\x81 agent")]) == 200
        assert harness.events()[-1].user_agent == "Broken \ufffd agent", "invalid UTF-8 is replaced, never a 500"


def _old_visitor_key(secret: bytes, day: str, ip: str, user_agent: str) -> str:
    day_key = hmac.digest(secret, b"contactcard/visitor/v1\x00" + day.encode(), "sha256")
    return hmac.new(day_key, ip.encode() + b"\x00" + user_agent.encode(), hashlib.sha256).hexdigest()[:32]


def _old_client_key(secret: bytes, ip: str) -> str:
    return "client:" + hmac.new(secret, b"contactcard/client/v1\x00" + ip.encode(), hashlib.sha256).hexdigest()[:32]


def test_a_backup_with_the_secret_cannot_turn_pseudonyms_back_into_addresses(harness: Harness,
                                                                             settings: Settings) -> None:
    """Finding 11: visitor and sign-in client keys were HMACs under the long-lived secret, so a copy of the
    database and the secret gave the address back by trying them all. Now keyed by random values held only in
    the server's memory; one client is still one key within a day (unique counts) and for the throttle."""
    issued = harness.seed()
    app, ip = harness.client.app, "198.51.100.7"
    for client in (ip, ip, "198.51.100.8"):
        assert harness.run(asgi_get, app, harness.path(issued), [(b"user-agent", b"PhoneA")], (client, 5000)) == 200
    keys = [e.visitor_key for e in harness.events()]
    assert keys[0] == keys[1] != keys[2]
    for _ in range(2):
        with pytest.raises(SignInRefused):
            harness.run(accounts(harness).sign_in, "nobody@example.co.jp", "not the password", ip)

    secret = bytes.fromhex(settings.secret_file.read_text().strip())  # the backup: the secret ...
    with closing(sqlite3.connect(settings.db_path)) as db:  # ... and every value in the database
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dump = "\n".join(str(row) for t in tables for row in db.execute(f'SELECT * FROM "{t}"'))
    addresses = [f"198.51.100.{n}" for n in range(256)]
    assert not {_old_visitor_key(secret, "2026-11-28", a, "PhoneA") for a in addresses} & set(keys)
    assert not any(_old_client_key(secret, a) in dump for a in addresses)
    stored_clients = re.findall(r"client:[0-9a-f]{32}", dump)
    assert len(stored_clients) >= 2 and len(set(stored_clients)) == 1, "one client, one throttle key"


def test_what_a_backup_holds_does_not_give_the_days_visitor_keys(harness: Harness, settings: Settings,
                                                                 clock: FakeClock) -> None:
    """Finding 11, whatever the derivation: a second server started on the same database and secret holds all a
    backup holds, so if a visitor key could be computed from them it would give the same key for the same client,
    user agent and day. It gives another (the day's key is random and in memory only); each server still gives one
    client one key, so unique visitors count as before within a process."""
    issued = harness.seed()
    path, agent, client = harness.path(issued), [(b"user-agent", b"PhoneA")], ("198.51.100.7", 5000)
    for _ in range(2):
        assert harness.run(asgi_get, harness.client.app, path, agent, client) == 200

    async def from_the_backup() -> None:
        other = create_app(settings, clock=clock)
        async with other.router.lifespan_context(other):
            for _ in range(2):
                assert await asgi_get(other, path, agent, client) == 200

    asyncio.run(from_the_backup())
    keys = [e.visitor_key for e in harness.events()]
    assert len(keys) == 4 and keys[0] == keys[1] and keys[2] == keys[3]
    assert keys[2] != keys[0], "the day's visitor key was computed again from what the database and secret hold"
