"""Lead capture: a customer leaves their contact for the company on a card page, with consent (issue 13, part 4).

The form is off until the company turns it on; entries go to the company's inbox in the console with the
consent text and its version, never to the employee; a signed, card-bound, timed form token instead of a
session; a honeypot, a minimum fill time and per-visitor limits against spam; bad input gets the form back
with what was typed; data-subject requests; the retention purge. The clock is the harness's FakeClock.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from html import unescape
from types import SimpleNamespace

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from contactcard import leads
from contactcard.config import Settings
from contactcard.models import IssuedCard, Lead, Outcome

from .accounts_kit import login, make_admin, make_employee, post_form, seed_two
from .conftest import BASE_URL, Cli, FakeClock, Harness
from .test_hot_path import _assert_same_answer

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
GOOD = {"name": "鈴木 一郎", "organisation": "株式会社テスト", "email": "ichiro@example.com", "phone": "",
        "message": "見積もりをお願いします。\n来週お電話ください。", "consent": "yes"}


def enable(h: Harness, on: bool = True) -> None:
    company = h.run(h.service.company)
    h.run(h.service.save_company, replace(company, leads_enabled=on), actor="cli")


def form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found, "no contact form on the page"
    return found[1]


def shown(html: str, field: str) -> str:
    """The value a field shows (what the customer typed, given back)."""
    if field == "message":
        found = re.search(r'<textarea id="lead-message"[^>]*>([^<]*)</textarea>', html)
    else:
        found = re.search(rf'<input id="lead-{field}"[^>]* value="([^"]*)"', html)
    assert found, field
    return unescape(found[1])


def send(h: Harness, issued: IssuedCard, data: dict[str, str], *, lang: str = "ja", wait: float = 10,
         user_agent: str = IPHONE, clock: FakeClock | None = None) -> httpx.Response:
    """Open the card page, let ``wait`` seconds pass (the injected clock), post the form with ``data``."""
    page = h.client.get(h.path(issued), headers={"user-agent": user_agent, "accept-language": lang})
    token = form_token(page.text)
    if clock is not None:
        clock.advance(seconds=wait)
    return h.client.post(h.path(issued) + f"?lang={lang}", data={"form_token": token, **data},
                         headers={"user-agent": user_agent})


def inbox(h: Harness) -> list[Lead]:
    return h.run(h.service.leads.inbox, limit=100)


@pytest.fixture
def card(harness: Harness) -> IssuedCard:
    issued = harness.seed()
    enable(harness)
    return issued


def test_the_form_is_off_by_default_and_a_post_then_stores_nothing(harness: Harness, clock: FakeClock) -> None:
    issued = harness.seed()
    page = harness.client.get(harness.path(issued)).text
    assert "form_token" not in page and "連絡先を残す" not in page
    enable(harness)
    token = form_token(harness.client.get(harness.path(issued)).text)
    enable(harness, on=False)
    clock.advance(seconds=10)
    r = harness.client.post(harness.path(issued), data={"form_token": token, **GOOD})
    assert r.status_code == 404 and inbox(harness) == []


def test_the_form_names_the_company_and_the_purpose_in_the_consent_line(harness: Harness, card: IssuedCard) -> None:
    ja = harness.client.get(harness.path(card), headers={"accept-language": "ja"}).text
    assert "株式会社サンプルに連絡先を残す" in ja
    assert ("入力した情報を株式会社サンプルがこのお問い合わせへの回答のためにのみ利用し、"
            "遅くとも400日後に削除することに同意します。") in ja
    assert "社員個人の携帯ではなく、株式会社サンプルの窓口に届きます" in ja
    en = harness.client.get(harness.path(card), headers={"accept-language": "en"}).text
    assert "Leave your contact for Sample K.K." in en
    assert ("I agree that Sample K.K. uses these details only to reply to my enquiry and deletes them after 400 "
            "days") in en
    assert "<script" not in ja, "no JavaScript"


def test_a_customer_leaves_their_contact_and_it_reaches_the_company_inbox_with_the_consent_shown(
        harness: Harness, card: IssuedCard, clock: FakeClock) -> None:
    page = harness.client.get(harness.path(card), headers={"accept-language": "en"}).text
    consent = unescape(re.search(r'<label for="lead-consent">([^<]+)</label>', page)[1])  # type: ignore[index]
    r = send(harness, card, GOOD, lang="en", clock=clock)
    assert r.status_code == 200
    assert "Thank you. Sample K.K. has your contact" in r.text and "form_token" not in r.text
    [lead] = inbox(harness)
    assert (lead.name, lead.organisation, lead.email, lead.message) == (
        "鈴木 一郎", "株式会社テスト", "ichiro@example.com", "見積もりをお願いします。\n来週お電話ください。")
    assert (lead.consent_text, lead.consent_version, lead.language) == (consent, leads.CONSENT_VERSION, "en")
    taro = harness.run(harness.service.find_employee, "taro@example.co.jp")
    assert (lead.card_id, lead.employee_id) == (card.card.id, taro.id)
    events = harness.events()
    assert [(e.outcome, e.is_bot) for e in events][-1] == (Outcome.LEAD, False), "the post is a recorded hit"
    day = harness.run(harness.service.stats, days=1).days[-1]
    assert day.scans == 2, "the two page views; the post is not a scan"
    audit = harness.run(harness.service.audit_log, limit=5)
    assert audit[0].action == "lead.add" and "ichiro" not in (audit[0].after or "") + (audit[0].before or "")


def test_entries_never_reach_the_employees_own_page(harness: Harness, employee_client: TestClient,
                                                    clock: FakeClock) -> None:
    enable(harness)
    issued = harness.run(harness.service.current_card, "taro@example.co.jp")
    assert issued is not None
    assert send(harness, issued, GOOD, clock=clock).status_code == 200
    assert inbox(harness)
    me = employee_client.get("/me")
    assert me.status_code == 200 and "鈴木" not in me.text and "ichiro@example.com" not in me.text
    assert employee_client.get("/admin/leads").status_code == 403


@pytest.mark.parametrize(("lang", "messages"), [
    ("ja", ("まだ送信されていません。", "お名前をご入力ください。", "メールアドレスの形式をご確認ください",
            "同意のチェックをお願いします")),
    ("en", ("Not sent yet.", "Please enter your name.", "This email address does not look complete",
            "Please tick the box to agree")),
])
def test_bad_input_gets_the_form_back_with_clear_errors_and_nothing_lost(
        harness: Harness, card: IssuedCard, clock: FakeClock, lang: str, messages: tuple[str, ...]) -> None:
    typed = {**GOOD, "name": "  ", "email": "ichiro@", "phone": "03-1234-5678", "consent": ""}
    r = send(harness, card, typed, lang=lang, clock=clock)
    assert r.status_code == 400
    for message in messages:
        assert message in r.text, message
    for name in ("organisation", "email", "phone", "message"):
        assert shown(r.text, name) == typed[name], name
    assert 'aria-invalid="true" aria-describedby="lead-name-error"' in r.text
    assert inbox(harness) == []
    # Corrected, the same form (its token) goes through.
    clock.advance(seconds=5)
    again = harness.client.post(harness.path(card), data={"form_token": form_token(r.text), **GOOD})
    assert again.status_code == 200 and len(inbox(harness)) == 1


def test_an_email_or_a_phone_is_needed_and_a_phone_alone_will_do(harness: Harness, card: IssuedCard,
                                                                  clock: FakeClock) -> None:
    r = send(harness, card, {**GOOD, "email": "", "phone": ""}, clock=clock)
    assert r.status_code == 400 and "メールアドレスか電話番号をご入力ください" in r.text
    r = send(harness, card, {**GOOD, "email": "", "phone": "call me maybe"}, clock=clock)
    assert r.status_code == 400 and "電話番号は数字でご入力ください" in r.text
    r = send(harness, card, {**GOOD, "email": "", "phone": "+81 3-1234-5678"}, clock=clock)
    assert r.status_code == 200
    assert [(lead.email, lead.phone) for lead in inbox(harness)] == [("", "+81 3-1234-5678")]
    r = send(harness, card, {**GOOD, "message": "x" * 2001}, clock=clock)
    assert r.status_code == 400 and "長すぎます" in r.text and len(inbox(harness)) == 1


def test_a_filled_honeypot_is_a_bot_answered_as_if_it_worked_and_nothing_is_stored(
        harness: Harness, card: IssuedCard, clock: FakeClock) -> None:
    r = send(harness, card, {**GOOD, leads.HONEYPOT: "https://spam.example"}, clock=clock)
    assert r.status_code == 200 and "ありがとうございます" in r.text
    assert inbox(harness) == []
    last = harness.events()[-1]
    assert (last.outcome, last.is_bot, last.device) == (Outcome.LEAD, True, "bot")


def test_a_form_sent_sooner_than_the_minimum_fill_time_comes_back_to_be_sent_again(
        harness: Harness, card: IssuedCard, clock: FakeClock) -> None:
    r = send(harness, card, GOOD, wait=leads.MIN_FILL.total_seconds() - 1, clock=clock)
    assert r.status_code == 400 and "入力内容をご確認のうえ、もう一度送信してください" in r.text
    assert shown(r.text, "name") == GOOD["name"] and inbox(harness) == []
    clock.advance(seconds=leads.MIN_FILL.total_seconds())
    again = harness.client.post(harness.path(card), data={"form_token": form_token(r.text), **GOOD})
    assert again.status_code == 200 and len(inbox(harness)) == 1


def test_the_form_token_is_bound_to_its_card_and_time_and_a_form_posted_twice_is_stored_once(
        harness: Harness, clock: FakeClock) -> None:
    taro, hanako = seed_two(harness)
    enable(harness)
    taro_token = form_token(harness.client.get(harness.path(taro)).text)
    clock.advance(seconds=10)
    for token in (None, "", "1.2.3", taro_token[:-2] + "AA", "9" * 200):
        data = GOOD if token is None else {"form_token": token, **GOOD}
        r = harness.client.post(harness.path(taro), data=data)
        assert r.status_code == 403 and "フォームを確認できませんでした" in r.text, token
    r = harness.client.post(harness.path(hanako), data={"form_token": taro_token, **GOOD})
    assert r.status_code == 403, "a token served with one card's page does not work on another's"
    assert inbox(harness) == []
    assert harness.client.post(harness.path(taro), data={"form_token": taro_token, **GOOD}).status_code == 200
    assert harness.client.post(harness.path(taro), data={"form_token": taro_token, **GOOD}).status_code == 200
    assert len(inbox(harness)) == 1, "posted twice (a reload), stored once"
    clock.advance(seconds=leads.FORM_LIFETIME.total_seconds())
    r = harness.client.post(harness.path(taro), data={"form_token": taro_token, **GOOD, "name": "later"})
    assert r.status_code == 400 and "時間が経ちました" in r.text and shown(r.text, "name") == "later"
    assert len(inbox(harness)) == 1


def test_the_form_reads_no_cookie_and_a_revoked_card_takes_no_entry(harness: Harness, card: IssuedCard,
                                                                   clock: FakeClock) -> None:
    token = form_token(harness.client.get(harness.path(card)).text)
    clock.advance(seconds=10)
    r = harness.client.post(harness.path(card), data={"form_token": token, **GOOD},
                            headers={"cookie": "lang=en", "accept-language": "ja"})
    assert r.status_code == 200 and "ありがとうございます" in r.text, "the language cookie was not read"
    harness.run(harness.service.revoke_card, "taro@example.co.jp", actor="cli")
    token = form_token(harness.client.get(harness.path(harness.run(harness.service.issue_card, "taro@example.co.jp",
                                                                   actor="cli"))).text)
    clock.advance(seconds=10)
    r = harness.client.post(harness.path(card), data={"form_token": token, **GOOD})
    assert r.status_code == 410 and len(inbox(harness)) == 1
    assert harness.events()[-1].outcome is Outcome.REVOKED


def test_per_visitor_and_company_limits_hold_back_floods(harness: Harness, card: IssuedCard, clock: FakeClock,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(leads.PER_VISITOR_PER_DAY):
        assert send(harness, card, {**GOOD, "name": f"n{n}"}, clock=clock).status_code == 200
    r = send(harness, card, {**GOOD, "name": "one more"}, clock=clock)
    assert r.status_code == 429 and "本日のお問い合わせはすでにお預かりしています" in r.text
    assert len(inbox(harness)) == leads.PER_VISITOR_PER_DAY
    other = send(harness, card, {**GOOD, "name": "someone else"}, clock=clock, user_agent=IPHONE + " other")
    assert other.status_code == 200, "another visitor is not held back"
    monkeypatch.setattr(leads, "PER_COMPANY_PER_HOUR", leads.PER_VISITOR_PER_DAY + 1)
    r = send(harness, card, {**GOOD, "name": "third"}, clock=clock, user_agent=IPHONE + " third")
    assert r.status_code == 429, "the company-wide hourly cap"
    clock.advance(hours=1)
    assert send(harness, card, {**GOOD, "name": "third"}, clock=clock, user_agent=IPHONE + " third").status_code == 200


def test_the_fast_path_and_the_routes_give_the_same_page_with_the_form(harness: Harness, card: IssuedCard) -> None:
    for lang in ("ja", "en"):
        fast = harness.client.get(harness.path(card), headers={"accept-language": lang})
        routed = harness.client.get(harness.path(card) + "?utm_source=poster", headers={"accept-language": lang})
        assert form_token(fast.text) != form_token(routed.text), "a fresh token per response"

        def same_token(r: httpx.Response) -> SimpleNamespace:
            text = re.sub(r'name="form_token" value="[^"]+"', 'name="form_token" value=""', r.text)
            return SimpleNamespace(status_code=r.status_code, headers=r.headers, text=text)

        _assert_same_answer(same_token(fast), same_token(routed))


def test_the_admin_inbox_lists_shows_deletes_and_exports_entries(harness: Harness, card: IssuedCard,
                                                                 clock: FakeClock) -> None:
    send(harness, card, {**GOOD, "name": "=HYPERLINK(\"x\")"}, clock=clock)
    send(harness, card, GOOD, clock=clock, user_agent=IPHONE + " b")
    admin = make_admin(harness)
    assert login(harness.client, admin.email, admin.password).status_code == 303
    listing = harness.client.get("/admin/leads")
    assert listing.status_code == 200 and "鈴木 一郎" in listing.text and "山田 太郎" in listing.text
    first, second = sorted(lead.id for lead in inbox(harness))
    one = harness.client.get(f"/admin/leads/{second}")
    assert one.status_code == 200 and "見積もりをお願いします" in one.text and leads.CONSENT_VERSION in one.text
    assert "遅くとも400日後に削除することに同意します" in one.text
    assert harness.client.get("/admin/leads/999").status_code == 404
    csv_text = harness.client.get("/admin/leads.csv").content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0][:4] == ["id", "time", "local_time", "name"] and len(rows) == 3
    assert rows[2][3].startswith("'="), "a formula cell is neutralised"
    r = post_form(harness.client, f"/admin/leads/{second}", f"/admin/leads/{second}/delete", {})
    assert r.status_code == 303 and [lead.id for lead in inbox(harness)] == [first]
    entry = harness.run(harness.service.audit_log, limit=1)[0]
    assert (entry.action, entry.target, entry.actor) == ("lead.delete", f"lead:{second}", admin.email)
    assert "ichiro" not in (entry.before or "") + (entry.after or "")


def test_a_data_subject_request_finds_and_deletes_everything_holding_an_email(
        harness: Harness, card: IssuedCard, clock: FakeClock) -> None:
    send(harness, card, {**GOOD, "email": "Ichiro@Example.com"}, clock=clock)
    send(harness, card, {**GOOD, "email": "", "phone": "03-1111-2222", "message": "reply to ichiro@example.com"},
         clock=clock, user_agent=IPHONE + " b")
    send(harness, card, {**GOOD, "name": "other", "email": "other@example.com"}, clock=clock, user_agent="c")
    admin = make_admin(harness)
    login(harness.client, admin.email, admin.password)
    found = harness.client.get("/admin/privacy", params={"email": "ichiro@example.com"})
    assert found.status_code == 200 and "この2件を削除" in found.text and "other@example.com" not in found.text
    assert harness.client.get("/admin/privacy", params={"email": "not an address"}).status_code == 400
    staff = harness.client.get("/admin/privacy", params={"email": "taro@example.co.jp"}).text
    assert "このアドレスの社員情報があります" in staff
    r = post_form(harness.client, "/admin/privacy", "/admin/privacy/erase", {"email": "ichiro@example.com"})
    assert r.status_code == 303
    assert [lead.name for lead in inbox(harness)] == ["other"]
    entry = harness.run(harness.service.audit_log, limit=1)[0]
    assert (entry.action, entry.actor) == ("privacy.erase", admin.email)
    assert json.loads(entry.after or "{}")["deleted"] == 2 and "ichiro" not in (entry.after or "").lower()


def test_entries_follow_the_retention_setting(harness: Harness, card: IssuedCard, clock: FakeClock) -> None:
    send(harness, card, {**GOOD, "name": "old"}, clock=clock)
    clock.advance(days=20)
    send(harness, card, {**GOOD, "name": "new"}, clock=clock, user_agent="b")
    company = harness.run(harness.service.company)
    harness.run(harness.service.save_company, replace(company, retention_days=10), actor="cli")
    harness.run(harness.service.purge)
    assert [lead.name for lead in inbox(harness)] == ["new"]


def test_the_settings_page_and_the_cli_turn_the_form_on_and_off(harness: Harness, settings: Settings,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    issued = harness.seed()
    admin = make_admin(harness)
    login(harness.client, admin.email, admin.password)
    page = harness.client.get("/admin/settings").text
    assert 'name="leads_enabled"' in page and "checked" not in page.split('name="leads_enabled"')[1][:40]
    fields = dict(re.findall(r'<input id="[^"]+" name="([^"]+)"[^>]*value="([^"]*)"', page))
    fields.update({n: "" for n in ("allow_email_domains", "allow_phone_prefixes", "allow_line_ids",
                                   "allow_line_works_domains", "allow_web_hosts")})
    fields.update({"allow_email_domains": "example.co.jp", "allow_phone_prefixes": "+813", "allow_line_ids": "@sample"})
    fields.pop("leads_enabled", None)
    fields.pop("preview_photo", None)  # checkboxes: sent only when ticked
    r = post_form(harness.client, "/admin/settings", "/admin/settings", {**fields, "leads_enabled": "on"})
    assert r.status_code == 303, r.text[:500]
    assert harness.run(harness.service.company).leads_enabled
    assert "form_token" in harness.client.get(harness.path(issued)).text
    entry = harness.run(harness.service.audit_log, limit=1)[0]
    assert entry.action == "company.save" and json.loads(entry.after or "{}") == {"leads_enabled": True}

    monkeypatch.setenv("CONTACTCARD_DB", str(settings.db_path))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(settings.secret_file))
    monkeypatch.setenv("CONTACTCARD_BASE_URL", BASE_URL)
    cli = Cli(capsys)
    assert cli.json("company", "set", "--leads", "off")["leads_enabled"] is False
    assert "leads: off" in cli.ok("company", "show")
    assert cli.json("company", "set", "--leads", "on")["leads_enabled"] is True
    assert cli.json("company", "set", "--preview-photo", "on")["preview_photo"] is True
    assert "preview_photo: on" in cli.ok("company", "show")
    code, _, err = cli("company", "set", "--leads", "maybe")
    assert code != 0 and "--leads" in err


def test_a_signed_in_employee_is_not_the_customer_either(harness: Harness, card: IssuedCard,
                                                         clock: FakeClock) -> None:
    """A session cookie changes nothing: the form acts for no one (it is stripped before the handler)."""
    taro = make_employee(harness)
    login(harness.client, taro.email, taro.password)
    assert send(harness, card, GOOD, clock=clock).status_code == 200
    entry = harness.run(harness.service.audit_log, limit=1)[0]
    assert (entry.action, entry.actor) == ("lead.add", leads.CUSTOMER)
