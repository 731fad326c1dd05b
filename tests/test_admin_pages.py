"""The admin console through the real app: every page renders for an admin, forms refuse bad input with a
message and write nothing, and unknown ids are 404s. (A wrong CSRF token on every form: test_admin_forms.)"""

from __future__ import annotations

import re
from html import unescape

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from contactcard.cli import main as cli_main
from contactcard.config import Settings
from contactcard.models import ChannelKind, EmployeeProfile, EmployeeStatus

from .accounts_kit import csrf_of
from .conftest import Harness


def token(client: TestClient) -> str:
    return csrf_of(client.get("/admin").text)


def post(client: TestClient, url: str, data: dict[str, str], lang: str = "en") -> httpx.Response:
    """A console form, answered in English unless ``lang`` says otherwise (the messages are checked in both)."""
    return client.post(url, data={"csrf": token(client), **data}, headers={"accept-language": lang})


def audit_count(h: Harness) -> int:
    return len(h.run(h.service._store.audit_events, limit=100_000))


def taro_id(h: Harness) -> int:
    return h.run(h.service.find_employee, "taro@example.co.jp").id


@pytest.fixture
def seeded(harness: Harness, admin_client: TestClient) -> Harness:
    harness.seed()
    return harness


PAGES = ["/admin", "/admin/", "/admin/employees", "/admin/employees/new", "/admin/employees/{id}",
         "/admin/employees/{id}/card/print", "/admin/employees/{id}/card/rotate", "/admin/employees/{id}/card/revoke",
         "/admin/employees/{id}/depart", "/admin/scans", "/admin/settings", "/admin/audit"]
YES = {"confirm": "yes"}  # the field only a confirmation page's form sends


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_for_an_admin_in_both_languages(seeded: Harness, url: str) -> None:
    url = url.format(id=taro_id(seeded))
    client = seeded.client
    card = seeded.run(seeded.service.current_card, "taro@example.co.jp")
    assert card is not None
    client.get(seeded.path(card))  # a scan, so tables have rows
    ja = client.get(url, headers={"accept-language": "ja"})
    assert ja.status_code == 200, ja.text[:400]
    assert '<html lang="ja">' in ja.text
    en = client.get(url + "?lang=en")
    assert en.status_code == 200 and '<html lang="en">' in en.text
    client.cookies.delete("lang")
    assert "no-store" in en.headers["cache-control"]
    assert "<script" not in en.text, "the console needs no script"


def test_japanese_console_is_translated(seeded: Harness) -> None:
    html = seeded.client.get("/admin/employees", headers={"accept-language": "ja"}).text
    assert "従業員" in html and "社員を追加" in html


def test_signed_out_and_employee_are_refused(harness: Harness) -> None:
    harness.seed()
    r = harness.client.get("/admin/employees")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/admin/employees")
    r = harness.client.post("/admin/employees/new", data={"family_name": "x", "email": "x@example.co.jp"})
    assert r.status_code == 303 and "/login" in r.headers["location"]
    assert len(harness.run(harness.service.employees)) == 1


def test_employee_role_gets_403_everywhere(harness: Harness, employee_client: TestClient) -> None:
    eid = taro_id(harness)
    for url in [u.format(id=eid) for u in PAGES] + ["/admin/scans.csv", "/admin/audit.csv",
                                                     f"/admin/employees/{eid}/card/qr.png"]:
        assert employee_client.get(url).status_code == 403, url
    r = employee_client.post(f"/admin/employees/{eid}/card/revoke", data={"csrf": "x"})
    assert r.status_code == 403
    assert harness.run(harness.service.current_card, eid) is not None


# --- employees -----------------------------------------------------------------------------------


def test_create_employee_then_edit(seeded: Harness) -> None:
    r = post(seeded.client, "/admin/employees/new", {
        "family_name": "佐藤", "given_name": "花子", "family_kana": "サトウ", "given_kana": "ハナコ",
        "latin_name": "Hanako Sato", "email": "hanako@example.co.jp", "title": "主任", "department": "営業部"})
    assert r.status_code == 303
    hanako = seeded.run(seeded.service.find_employee, "hanako@example.co.jp")
    assert r.headers["location"] == f"/admin/employees/{hanako.id}?done=created"
    assert (hanako.family_kana, hanako.latin_name, hanako.title) == ("サトウ", "Hanako Sato", "主任")
    page = seeded.client.get(r.headers["location"], headers={"accept-language": "en"}).text
    assert "Employee added." in page and "佐藤 花子" in page
    r = post(seeded.client, f"/admin/employees/{hanako.id}", {
        "family_name": "佐藤", "given_name": "花子", "email": "hanako@example.co.jp", "title": "課長"})
    assert r.status_code == 303
    assert seeded.run(seeded.service.find_employee, hanako.id).title == "課長"
    actions = [a.action for a in seeded.run(seeded.service._store.audit_events)]
    assert "employee.update" in actions and "employee.add" in actions


@pytest.mark.parametrize(("data", "message"), [
    ({"family_name": "", "email": "a@example.co.jp"}, "family name is required"),
    ({"family_name": "x" * 201, "email": "a@example.co.jp"}, "longer than 200"),
    ({"family_name": "x", "email": "not-an-email"}, "not an email address"),
    ({"family_name": "x", "email": ""}, "not an email address"),
    ({"family_name": "x", "email": "taro@example.co.jp"}, "already exists"),
])
def test_bad_employee_form_shows_message_and_writes_nothing(seeded: Harness, data: dict[str, str],
                                                            message: str) -> None:
    before = audit_count(seeded)
    r = post(seeded.client, "/admin/employees/new", data)
    assert r.status_code == 400
    assert message in r.text and 'role="alert"' in r.text
    assert len(seeded.run(seeded.service.employees)) == 1
    assert audit_count(seeded) == before


def test_wrong_type_upload_in_a_text_field_is_just_bad_input(seeded: Harness) -> None:
    r = seeded.client.post("/admin/employees/new", data={"csrf": token(seeded.client), "email": "a@example.co.jp"},
                           files={"family_name": ("x.txt", b"hello", "text/plain")})
    assert r.status_code in (400, 403)
    assert len(seeded.run(seeded.service.employees)) == 1


def test_unknown_and_odd_ids_are_404_never_500(seeded: Harness) -> None:
    eid = taro_id(seeded)
    channel = seeded.run(seeded.service.channels, eid)[0]
    for url in ["/admin/employees/999999", "/admin/employees/0", "/admin/employees/-1", "/admin/employees/abc",
                "/admin/employees/99999999999999999999999", "/admin/employees/１", "/admin/employees/999/card/print",
                "/admin/employees/999/card/qr.png", "/admin/employees/999/card/qr.svg"]:
        assert seeded.client.get(url).status_code == 404, url
    for url in [f"/admin/employees/999999/channels/{channel.id}/remove", f"/admin/employees/{eid}/channels/999/remove",
                f"/admin/employees/{eid}/channels/x/move", "/admin/employees/999999/card/revoke",
                f"/admin/employees/{eid}/card/destroy", "/admin/settings/channels/99999/remove",
                f"/admin/settings/channels/{channel.id}/remove",  # an employee's channel is not a general one
                "/admin/employees/99999999999999999999999/depart"]:
        assert post(seeded.client, url, {"direction": "up"}).status_code == 404, url
    assert len(seeded.run(seeded.service.channels, eid)) == 3


def test_another_employees_channel_cannot_be_removed_through_this_employee(seeded: Harness) -> None:
    other = seeded.run(seeded.service.add_employee, EmployeeProfile(email="hanako@example.co.jp", family_name="佐藤"),
                       actor="cli")
    theirs = seeded.run(seeded.service.add_channel, other.id, ChannelKind.PHONE, "03-1234-7777", actor="cli")
    r = post(seeded.client, f"/admin/employees/{taro_id(seeded)}/channels/{theirs.id}/remove", {})
    assert r.status_code == 404
    assert seeded.run(seeded.service.channels, other.id) == [theirs]


def test_a_policy_tightened_from_the_cli_applies_in_the_console_at_once(
        seeded: Harness, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 18: the CLI is another process on the same database file; the console must not check against
    the company it cached before (no scan in between to refresh it)."""
    eid = taro_id(seeded)
    before = seeded.run(seeded.service.channels, eid)
    seeded.client.get(f"/admin/employees/{eid}")  # the console has read (and cached) the company
    monkeypatch.setenv("CONTACTCARD_DB", str(settings.db_path))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(settings.secret_file))
    assert cli_main(["company", "set", "--allow-line-id", "@other"]) == 0, capsys.readouterr().err
    r = post(seeded.client, f"/admin/employees/{eid}/channels",
             {"kind": "line", "target": "https://line.me/R/ti/p/@sample"})  # allowed only by the old policy
    assert r.status_code == 400
    assert seeded.run(seeded.service.channels, eid) == before, "nothing saved"
    r = post(seeded.client, f"/admin/employees/{eid}/channels",
             {"kind": "line", "target": "https://line.me/R/ti/p/@other"})
    assert r.status_code == 303


def test_channels_add_reorder_remove(seeded: Harness) -> None:
    eid = taro_id(seeded)
    r = post(seeded.client, f"/admin/employees/{eid}/channels",
             {"kind": "booking", "target": "https://booking.example.co.jp/taro", "label": "商談予約"})
    assert r.status_code == 303
    kinds = [c.kind.value for c in seeded.run(seeded.service.channels, eid)]
    assert kinds == ["line", "phone", "email", "booking"]
    last = seeded.run(seeded.service.channels, eid)[-1]
    r = post(seeded.client, f"/admin/employees/{eid}/channels/{last.id}/move", {"direction": "up"})
    assert r.status_code == 303
    assert [c.kind.value for c in seeded.run(seeded.service.channels, eid)] == ["line", "phone", "booking", "email"]
    first = seeded.run(seeded.service.channels, eid)[0]
    post(seeded.client, f"/admin/employees/{eid}/channels/{first.id}/move", {"direction": "up"})  # already first
    post(seeded.client, f"/admin/employees/{eid}/channels/{first.id}/move", {"direction": "down"})
    assert [c.kind.value for c in seeded.run(seeded.service.channels, eid)] == ["phone", "line", "booking", "email"]
    r = post(seeded.client, f"/admin/employees/{eid}/channels/{first.id}/move", {"direction": "sideways"})
    assert r.status_code == 400
    assert post(seeded.client, f"/admin/employees/{eid}/channels/{first.id}/remove", {}).status_code == 303
    assert [c.kind.value for c in seeded.run(seeded.service.channels, eid)] == ["phone", "booking", "email"]
    # the customer's page follows the new order
    card = seeded.run(seeded.service.current_card, eid)
    assert card is not None
    html = seeded.client.get(seeded.path(card), headers={"accept-language": "en"}).text
    assert html.index("Call") < html.index("商談予約") < html.index("Send an email")


@pytest.mark.parametrize(("url", "data", "ja", "en"), [
    # a policy refusal naming what is allowed
    ("/admin/employees/{id}/channels", {"kind": "email", "target": "taro@gmail.com"},
     "taro@gmail.com は会社のメールアドレスではありません（許可ドメイン: example.co.jp）",
     "taro@gmail.com is not a company email address (allowed domains: example.co.jp)"),
    # a message with a translated phrase inside (the field's name, the reason a host is refused)
    ("/admin/employees/new", {"family_name": "", "email": "a@example.co.jp"}, "姓は必須です",
     "family name is required"),
    ("/admin/employees/{id}/channels", {"kind": "web", "target": "https://bit.ly/x"},
     "bit.ly は短縮URLです（どのアドレスにも転送できます）。そのため会社のチャネルにはできません",
     "bit.ly is a link shortener: it can forward to any address, so it cannot be a company channel"),
    ("/admin/employees/{id}", {"family_name": "山田", "email": "taro@example.co.jp", "title": "LINE: taro_private"},
     "役職にIDのような語（taro_private）を含めることはできません",
     "the title must not carry an ID-like word (taro_private)"),
    # the store's, the accounts' and the console's own
    ("/admin/employees/new", {"family_name": "x", "email": "taro@example.co.jp"},
     "そのメールアドレスの社員はすでに登録されています", "an employee with that email already exists"),
    ("/admin/employees/{id}/card/extend", {"days": "0"}, "日数は1から3650までの整数で入力してください",
     "days must be a whole number from 1 to 3650"),
    ("/admin/settings", {"name": "株式会社サンプル", "brand_color": "red", "timezone": "Asia/Tokyo",
                         "default_card_days": "90", "retention_days": "400"},
     "ブランドカラーは #0b5cad の形式で入力してください（入力: 'red'）",
     "brand colour must look like #0b5cad, got 'red'"),
])
def test_errors_are_shown_in_the_consoles_language(seeded: Harness, url: str, data: dict[str, str], ja: str,
                                                   en: str) -> None:
    """Issue 13.5: the service's, policy's and store's messages are in the catalogue, not English in a Japanese
    console (tests/test_i18n.py checks that every one has a translation)."""
    url = url.format(id=taro_id(seeded))
    japanese = post(seeded.client, url, data, lang="ja")
    shown = re.findall(r'class="form-error"[^>]*>(.*?)</p>', unescape(japanese.text), re.S)
    assert japanese.status_code == 400 and ja in unescape(japanese.text), shown
    assert en not in unescape(japanese.text)
    english = post(seeded.client, url, data, lang="en")
    assert english.status_code == 400 and en in unescape(english.text)


@pytest.mark.parametrize(("data", "message"), [
    ({"kind": "phone", "target": "06-9999-0000"}, "not a company phone number"),  # refused by policy
    ({"kind": "email", "target": "taro@gmail.com"}, "not a company email address"),
    ({"kind": "line", "target": "https://line.me/R/ti/p/@someone-else"}, "LINE Official Accounts"),
    ({"kind": "web", "target": "javascript:alert(1)"}, "https://"),
    ({"kind": "web", "target": ""}, "target is empty"),
    ({"kind": "web", "target": "https://example.co.jp/" + "a" * 2100}, "longer than 2000"),
    ({"kind": "fax", "target": "03-1234-0000"}, "choose the kind"),
    ({"kind": "phone", "target": "03-1234-0001", "label": "x" * 201}, "longer than 200"),
])
def test_bad_channel_is_refused_with_a_message(seeded: Harness, data: dict[str, str], message: str) -> None:
    eid = taro_id(seeded)
    before = audit_count(seeded)
    r = post(seeded.client, f"/admin/employees/{eid}/channels", data)
    assert r.status_code == 400
    assert message in r.text, r.text[r.text.find("form-error"):][:300]
    assert len(seeded.run(seeded.service.channels, eid)) == 3
    assert audit_count(seeded) == before


def test_depart_with_successor_revokes_the_card(seeded: Harness) -> None:
    eid = taro_id(seeded)
    hanako = seeded.run(seeded.service.add_employee, EmployeeProfile(email="hanako@example.co.jp", family_name="佐藤"),
                        actor="cli")
    card = seeded.run(seeded.service.current_card, eid)
    assert card is not None
    r = post(seeded.client, f"/admin/employees/{eid}/depart", {"successor": str(hanako.id), **YES})
    assert r.status_code == 303
    taro = seeded.run(seeded.service.find_employee, eid)
    assert taro.status is EmployeeStatus.DEPARTED and taro.successor_id == hanako.id
    assert seeded.client.get(seeded.path(card)).status_code == 410
    for successor in ("abc", "99999", str(eid)):
        other = seeded.run(seeded.service.add_employee,
                           EmployeeProfile(email=f"x{successor}@example.co.jp", family_name="x"), actor="cli")
        for data in ({"successor": successor}, {"successor": successor, **YES}):
            r = post(seeded.client, f"/admin/employees/{other.id}/depart", data)
            assert r.status_code == 400 and "choose a successor from the list" in r.text
        assert seeded.run(seeded.service.find_employee, other.id).status is EmployeeStatus.ACTIVE


def test_invitation_link_is_shown_once(seeded: Harness) -> None:
    eid = taro_id(seeded)
    r = post(seeded.client, f"/admin/employees/{eid}/invite", {})
    assert r.status_code == 200
    links = re.findall(r"https://cards\.example\.co\.jp/invite/[A-Za-z0-9_-]+", r.text)
    assert len(links) == 1
    assert links[0] not in seeded.client.get(f"/admin/employees/{eid}").text


# --- cards ---------------------------------------------------------------------------------------


def test_card_rotate_revoke_issue_extend(seeded: Harness, clock: object) -> None:
    eid = taro_id(seeded)
    old = seeded.run(seeded.service.current_card, eid)
    assert old is not None
    assert post(seeded.client, f"/admin/employees/{eid}/card/rotate", YES).status_code == 303
    new = seeded.run(seeded.service.current_card, eid)
    assert new is not None and new.url != old.url
    assert seeded.client.get(seeded.path(old)).status_code == 410
    r = post(seeded.client, f"/admin/employees/{eid}/card/extend", {"days": "10"})
    assert r.status_code == 303
    extended = seeded.run(seeded.service.current_card, eid)
    assert extended is not None and (extended.card.expires_at - extended.card.created_at).days == 10
    for bad in ("0", "-5", "abc", "3651", "1e3", "9" * 40):
        r = post(seeded.client, f"/admin/employees/{eid}/card/extend", {"days": bad})
        assert r.status_code == 400, bad
        assert "days" in r.text
    assert post(seeded.client, f"/admin/employees/{eid}/card/revoke", YES).status_code == 303
    assert seeded.run(seeded.service.current_card, eid) is None
    r = post(seeded.client, f"/admin/employees/{eid}/card/revoke", YES)
    assert r.status_code == 400 and "no live card" in r.text
    assert seeded.client.get(f"/admin/employees/{eid}/card/revoke").status_code == 404, "no card: nothing to confirm"
    assert post(seeded.client, f"/admin/employees/{eid}/card/issue", {"days": "30"}).status_code == 303
    assert seeded.run(seeded.service.current_card, eid) is not None
    r = post(seeded.client, f"/admin/employees/{eid}/card/issue", {})
    assert r.status_code == 400 and "already has a card" in r.text


def confirmation_form(html: str, action: str) -> dict[str, str]:
    """The fields of the confirmation page's one form (posting to ``action``), as a browser would send them."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', html, re.S)
    assert form, f"no confirmation form for {action}"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form[1]))


@pytest.mark.parametrize("action", ["revoke", "rotate"])
def test_rotate_and_revoke_ask_first_naming_the_employee_and_what_customers_see(seeded: Harness,
                                                                                 action: str) -> None:
    eid = taro_id(seeded)
    card = seeded.run(seeded.service.current_card, eid)
    assert card is not None
    url = f"/admin/employees/{eid}/card/{action}"
    detail = seeded.client.get(f"/admin/employees/{eid}").text
    assert f'<form method="get" action="{url}">' in detail, "the employee page's button only asks"
    assert f'method="post" action="{url}"' not in detail
    before = audit_count(seeded)

    ja = seeded.client.get(url, headers={"accept-language": "ja"}).text
    assert "山田 太郎 さん" in ja and "印刷済みの名刺とQRコードはただちに使えなくなります" in ja
    assert "会社の代表連絡先だけが表示されます" in ja and "刷り直す必要があります" in ja
    en = seeded.client.get(url + "?lang=en").text
    seeded.client.cookies.delete("lang")
    assert ("printed cards and QR codes of 山田 太郎 stop working at once: customers who scan them see a page "
            "saying the link is no longer in use") in en

    # one POST without the confirmation (a misclick on an old form, a replay) changes nothing and asks again
    r = post(seeded.client, url, {})
    assert r.status_code == 200 and "山田 太郎" in r.text and confirmation_form(r.text, url)["confirm"] == "yes"
    assert seeded.run(seeded.service.current_card, eid) == card
    assert audit_count(seeded) == before
    assert seeded.client.get(seeded.path(card)).status_code == 200, "the printed card still works"

    # the confirmation page's own form does it
    r = seeded.client.post(url, data=confirmation_form(ja, url))
    assert r.status_code == 303 and r.headers["location"] == f"/admin/employees/{eid}?done={action}d"
    assert seeded.client.get(seeded.path(card)).status_code == 410
    assert audit_count(seeded) == before + 1


def test_departure_asks_first_naming_the_successor(seeded: Harness) -> None:
    eid = taro_id(seeded)
    hanako = seeded.run(seeded.service.add_employee,
                        EmployeeProfile(email="hanako@example.co.jp", family_name="佐藤", given_name="花子"),
                        actor="cli")
    card = seeded.run(seeded.service.current_card, eid)
    assert card is not None
    url = f"/admin/employees/{eid}/depart"
    detail = seeded.client.get(f"/admin/employees/{eid}").text
    assert f'<form class="form" method="get" action="{url}">' in detail
    ja = seeded.client.get(f"{url}?successor={hanako.id}", headers={"accept-language": "ja"}).text
    assert "山田 太郎 さんを退職として登録しますか" in ja
    assert "今後の担当者が 佐藤 花子 さんであることが案内されます" in ja and "ログインできなくなります" in ja
    assert seeded.client.get(f"{url}?successor=abc").status_code == 400

    r = post(seeded.client, url, {"successor": str(hanako.id)})
    assert r.status_code == 200 and confirmation_form(r.text, url) == {
        "csrf": token(seeded.client), "confirm": "yes", "successor": str(hanako.id)}
    assert seeded.run(seeded.service.find_employee, eid).status is EmployeeStatus.ACTIVE
    assert seeded.client.get(seeded.path(card)).status_code == 200

    assert seeded.client.post(url, data=confirmation_form(ja, url)).status_code == 303
    taro = seeded.run(seeded.service.find_employee, eid)
    assert taro.status is EmployeeStatus.DEPARTED and taro.successor_id == hanako.id
    assert "佐藤 花子" in seeded.client.get(seeded.path(card)).text
    assert seeded.client.get(url).status_code == 404, "already departed: nothing to confirm"


def test_qr_downloads_decode_to_the_card_url(seeded: Harness) -> None:
    import io

    import cairosvg
    import zxingcpp
    from PIL import Image

    eid = taro_id(seeded)
    card = seeded.run(seeded.service.current_card, eid)
    assert card is not None
    png = seeded.client.get(f"/admin/employees/{eid}/card/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert "attachment" in png.headers["content-disposition"]
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))] == [card.url]
    svg = seeded.client.get(f"/admin/employees/{eid}/card/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    raster = cairosvg.svg2png(bytestring=svg.content, background_color="white", output_width=600)
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(raster)))] == [card.url]


def test_print_sheet_is_a_91_by_55_mm_card(seeded: Harness) -> None:
    eid = taro_id(seeded)
    card = seeded.run(seeded.service.current_card, eid)
    assert card is not None
    html = seeded.client.get(f"/admin/employees/{eid}/card/print").text
    assert "株式会社サンプル" in html and "山田 太郎" in html and "ヤマダ タロウ" in html and "課長" in html
    assert card.url.removeprefix("https://") in html and "<svg" in html
    expiry = re.search(r'<p class="print-expiry">([^<]*)</p>', html)
    assert expiry and "2027-02-26" in expiry[1], "the sheet says, on screen only, until when the printed QR leads here"
    assert expiry[1] not in html[html.index('<article class="bizcard"'):], "nothing of it on the card itself"
    css = seeded.client.get("/static/card_print.css").text
    assert "size: 91mm 55mm" in css and "width: 91mm; height: 55mm" in css


# --- settings ------------------------------------------------------------------------------------


def _settings(**over: str) -> dict[str, str]:
    base = {"name": "株式会社サンプル", "name_en": "Sample K.K.", "brand_color": "#0b5cad",
            "business_hours": "平日 9:00–18:00", "business_hours_en": "Weekdays", "timezone": "Asia/Tokyo",
            "default_card_days": "60", "retention_days": "365", "allow_email_domains": "example.co.jp\n@Example.jp",
            "allow_phone_prefixes": "03\n+8145", "allow_line_ids": "@sample", "allow_line_works_domains": ""}
    return {**base, **over}


def test_settings_save(seeded: Harness) -> None:
    r = post(seeded.client, "/admin/settings", _settings())
    assert r.status_code == 303
    company = seeded.run(seeded.service.company)
    assert company.brand_color == "#0b5cad" and company.default_card_days == 60
    assert company.allow_email_domains == ("example.co.jp", "example.jp")
    assert company.allow_phone_prefixes == ("+813", "+8145")


@pytest.mark.parametrize(("over", "message"), [
    ({"name": ""}, "company name is required"),
    ({"name": "x" * 201}, "longer than 200"),
    ({"brand_color": "red"}, "brand colour"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"default_card_days": "abc"}, "whole number"),
    ({"default_card_days": "0"}, "default link lifetime"),
    ({"retention_days": "99999"}, "retention"),
    ({"allow_email_domains": "not a domain"}, "not a domain"),
    ({"allow_phone_prefixes": "abc"}, "not a phone prefix"),
])
def test_bad_settings_are_refused_with_a_message(seeded: Harness, over: dict[str, str], message: str) -> None:
    before = seeded.run(seeded.service.company)
    r = post(seeded.client, "/admin/settings", _settings(**over))
    assert r.status_code == 400
    assert message in r.text
    seeded.service.invalidate()
    assert seeded.run(seeded.service.company) == before


def test_general_channels_editor_and_policy(seeded: Harness) -> None:
    r = post(seeded.client, "/admin/settings/channels", {"kind": "web", "target": "https://example.co.jp/"})
    assert r.status_code == 303
    assert [c.kind.value for c in seeded.run(seeded.service.channels, None)] == ["phone", "email", "web"]
    r = post(seeded.client, "/admin/settings/channels", {"kind": "phone", "target": "090-1234-5678"})
    assert r.status_code == 400 and "not a company phone number" in r.text
    web = seeded.run(seeded.service.channels, None)[-1]
    assert post(seeded.client, f"/admin/settings/channels/{web.id}/move", {"direction": "up"}).status_code == 303
    assert [c.kind.value for c in seeded.run(seeded.service.channels, None)] == ["phone", "web", "email"]
    assert post(seeded.client, f"/admin/settings/channels/{web.id}/remove", {}).status_code == 303
    assert len(seeded.run(seeded.service.channels, None)) == 2


# --- audit ---------------------------------------------------------------------------------------


def test_audit_page_filters_by_actor_and_paginates(seeded: Harness) -> None:
    eid = taro_id(seeded)
    for i in range(60):
        post(seeded.client, f"/admin/employees/{eid}", {"family_name": f"山田{i}", "email": "taro@example.co.jp"})
    html = seeded.client.get("/admin/audit?actor=admin@example.co.jp", headers={"accept-language": "en"}).text
    assert "employee.update" in html and "Page 1 of 2" in html
    assert "山田59" in html
    page2 = seeded.client.get("/admin/audit?actor=admin@example.co.jp&page=2").text
    assert "山田0" in page2
    none = seeded.client.get("/admin/audit?actor=nobody@example.co.jp", headers={"accept-language": "en"}).text
    assert "No entries." in none
    assert seeded.client.get("/admin/audit?page=abc").status_code == 200
    assert seeded.client.get("/admin/audit?page=999999999999").status_code == 200
