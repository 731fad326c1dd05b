"""The contactcard CLI, run in-process through ``main(argv)`` against a temporary database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from contactcard.cli import NO_POLICY_WARNING, main, split_name
from contactcard.models import Outcome, ScanEvent
from contactcard.store import Store

BASE_URL = "https://cards.example.co.jp"
CARD_URL = re.compile(r"https://cards\.example\.co\.jp/c/[A-Za-z0-9_-]{20}")
ROOT = Path(__file__).resolve().parent.parent
TARO = "taro.yamada@example.co.jp"
HANAKO = "hanako.sato@example.co.jp"


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_lines(self) -> list[str]:
        return self.err.splitlines()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    paths = {"db": tmp_path / "data" / "cc.sqlite3", "secret": tmp_path / "data" / "secret.key"}
    monkeypatch.setenv("CONTACTCARD_DB", str(paths["db"]))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(paths["secret"]))
    monkeypatch.setenv("CONTACTCARD_BASE_URL", BASE_URL)
    return paths


@pytest.fixture
def cli(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str) -> Result:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


def assert_one_line_error(result: Result, code: int = 1) -> str:
    assert result.code == code
    assert len(result.error_lines) == 1, result.err
    assert result.error_lines[0].startswith("contactcard: error: ")
    assert "Traceback" not in result.err
    return result.error_lines[0]


def with_policy(cli: Any) -> None:
    ok(cli("company", "set", "--name", "株式会社サンプル商事", "--allow-email-domain", "example.co.jp",
           "--allow-phone-prefix", "+813", "--allow-line-id", "@sample-shoji"))


def add_taro(cli: Any) -> None:
    ok(cli("employee", "add", "--email", TARO, "--name", "山田 太郎", "--kana", "ヤマダ タロウ",
           "--latin", "Taro Yamada", "--department", "営業部", "--title", "課長"))


def insert_events(db: Path, events: list[ScanEvent]) -> None:
    async def go() -> None:
        store = await Store.open(db)
        try:
            async with store.transaction():
                await store.insert_events(events)
        finally:
            await store.close()

    asyncio.run(go())


# --- settings, migrate, usage -------------------------------------------------------------------------


def test_migrate_creates_the_secret_private(cli: Any, env: dict[str, Path]) -> None:
    result = ok(cli("migrate", "--json"))
    assert result.json["schema_version"] >= 1
    assert stat.S_IMODE(env["secret"].stat().st_mode) == 0o600
    assert ok(cli("migrate")).out.startswith("schema version ")


def test_bad_int_is_a_one_line_usage_error(cli: Any) -> None:
    line = assert_one_line_error(cli("card", "issue", "--employee", TARO, "--days", "abc"), code=2)
    assert "--days" in line and "abc" in line


@pytest.mark.parametrize("argv", [[], ["card"], ["frobnicate"], ["channel", "add", "--kind", "fax", "--target", "x"]])
def test_usage_errors_are_one_line(cli: Any, argv: list[str]) -> None:
    assert_one_line_error(cli(*argv), code=2)


def test_unknown_employee_exits_1(cli: Any) -> None:
    line = assert_one_line_error(cli("card", "issue", "--employee", "nobody@example.co.jp"))
    assert "nobody@example.co.jp" in line
    assert_one_line_error(cli("channel", "list", "--employee", "999"))


def test_unreadable_secret_is_one_line(cli: Any, env: dict[str, Path]) -> None:
    env["secret"].parent.mkdir(parents=True)
    env["secret"].write_text("not hex\n")
    env["secret"].chmod(0o600)
    assert "hex" in assert_one_line_error(cli("employee", "list"))


def test_console_entry_error_path_in_a_subprocess(env: dict[str, Path]) -> None:
    child_env = {**os.environ, "PYTHONPATH": str(ROOT), "CONTACTCARD_DB": str(env["db"]),
                 "CONTACTCARD_SECRET_FILE": str(env["secret"]), "CONTACTCARD_BASE_URL": BASE_URL}
    for argv, code in ((["card", "issue", "--employee", "nobody@example.co.jp"], 1),
                       (["card", "issue", "--employee", TARO, "--days", "abc"], 2)):
        proc = subprocess.run([sys.executable, "-m", "contactcard.cli", *argv], capture_output=True, text=True,
                              env=child_env, cwd=ROOT, timeout=60, check=False)
        assert proc.returncode == code
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.splitlines()) == 1
        assert proc.stderr.startswith("contactcard: error: ")


# --- company and channel policy -----------------------------------------------------------------------


def test_company_set_and_show(cli: Any) -> None:
    assert_one_line_error(cli("company", "set", "--hours", "9-18"))  # no name yet
    data = ok(cli("company", "set", "--name", "株式会社サンプル商事", "--name-en", "Sample Trading",
                  "--brand-color", "#0B5CAD", "--allow-email-domain", "@Example.co.jp",
                  "--allow-phone-prefix", "03", "--allow-line-id", "Sample-Shoji",
                  "--allow-line-works-domain", "sample-shoji", "--allow-web-host", "https://Example.co.jp/",
                  "--phone", "03-1234-5678",
                  "--email", "info@example.co.jp", "--web", "https://www.example.co.jp/", "--json")).json
    assert data["policy"] == {"email_domains": ["example.co.jp"], "phone_prefixes": ["+813"],
                              "line_ids": ["@sample-shoji"], "line_works_domains": ["sample-shoji"],
                              "web_hosts": ["example.co.jp"]}
    assert data["brand_color"] == "#0b5cad"
    assert {(c["kind"], c["target"]) for c in data["channels"]} == {
        ("phone", "tel:+81312345678"), ("email", "mailto:info@example.co.jp"), ("web", "https://www.example.co.jp/")}
    # options not given keep their value; a list given replaces the stored one
    ok(cli("company", "set", "--hours", "平日 9:00–18:00", "--allow-email-domain", "example.jp"))
    shown = ok(cli("company", "show", "--json")).json
    assert shown["name"] == "株式会社サンプル商事" and shown["name_en"] == "Sample Trading"
    assert shown["business_hours"] == "平日 9:00–18:00"
    assert shown["policy"]["email_domains"] == ["example.jp"]
    assert shown["policy"]["phone_prefixes"] == ["+813"]
    assert len(shown["channels"]) == 3
    assert "brand colour" in assert_one_line_error(cli("company", "set", "--brand-color", "blue"))
    # a general channel outside the policy is refused too
    assert_one_line_error(cli("company", "set", "--email", "someone@gmail.com"))
    assert_one_line_error(cli("company", "set", "--web", "https://ｌｉｎｅ.me/ti/p/~taro_private"))
    assert_one_line_error(cli("company", "set", "--web", "https://other.example.jp/"))  # not on --allow-web-host
    assert "link shortener" in assert_one_line_error(cli("company", "set", "--allow-web-host", "bit.ly"))
    assert ok(cli("company", "show", "--json")).json["policy"]["web_hosts"] == ["example.co.jp"]


@pytest.mark.parametrize(("kind", "target"), [
    ("email", "mailto:taro.yamada@gmail.com"),
    ("phone", "tel:090-1234-5678"),
    ("line", "https://line.me/ti/p/~taro"),
    # the review's reproductions of findings 1, 2, 5 and 12
    ("web", "https://ｌｉｎｅ.me/ti/p/~taro_private"),
    ("custom", "https://line.me./ti/p/~taro_private"),
    ("booking", "https://line%2eme/ti/p/~taro_private"),
    ("web", "https://web.whatsapp.com/send?phone=819012345678"),
    ("email", "mailto:taro.private%40gmail.com%2Ctaro.yamada@example.co.jp"),
    ("line", "https://line.me/R/ti/p/~taro_private/@sample-shoji"),
    ("line", "https://line.me/R/ti/p/%7Etaro_private%2F%40sample-shoji"),
    ("line", "https://liff.line.me/1657000000-abcdefgh/@sample-shoji"),
    ("web", "https://google.com/url?q=https://line.me/ti/p/~x"),
    ("custom", "https://m.me/taro.private"),
])
def test_policy_refuses_personal_channels(cli: Any, kind: str, target: str) -> None:
    with_policy(cli)
    add_taro(cli)
    before = ok(cli("channel", "list", "--employee", TARO, "--json")).json
    assert_one_line_error(cli("channel", "add", "--employee", TARO, "--kind", kind, "--target", target))
    assert ok(cli("channel", "list", "--employee", TARO, "--json")).json == before == []


def test_policy_refuses_a_personal_contact_in_free_text(cli: Any) -> None:
    """Finding 12: a label, title or department printed on the card carries no personal contact."""
    with_policy(cli)
    assert "title" in assert_one_line_error(cli("employee", "add", "--email", TARO, "--name", "山田 太郎",
                                                "--title", "LINE ID taro_private"))
    assert "department" in assert_one_line_error(cli("employee", "add", "--email", TARO, "--name", "山田 太郎",
                                                     "--department", "営業部 090-1234-5678"))
    # the name is printed on the card and is the vCard's FN too (a variant the review did not try)
    assert "the name must" in assert_one_line_error(cli("employee", "add", "--email", TARO, "--name",
                                                        "山田 太郎 090-1234-5678"))
    assert "the name must" in assert_one_line_error(cli("employee", "add", "--email", TARO, "--name",
                                                        "LINE ID taro_private"))
    assert "the name reading must" in assert_one_line_error(cli("employee", "add", "--email", TARO, "--name",
                                                                "山田 太郎", "--kana", "ヤマダ 〇九〇一二三四五六七八"))
    assert ok(cli("employee", "list", "--json")).json == []
    add_taro(cli)
    assert "label" in assert_one_line_error(cli("channel", "add", "--employee", TARO, "--kind", "phone",
                                                "--target", "03-1234-5678",
                                                "--label", "個人LINE: taro_private / 090-1234-5678"))
    assert ok(cli("channel", "list", "--employee", TARO, "--json")).json == []
    ok(cli("channel", "add", "--employee", TARO, "--kind", "line", "--target", "https://line.me/R/ti/p/@sample-shoji",
           "--label", "LINE公式アカウント"))


@pytest.mark.parametrize("kind", ["web", "custom", "booking"])
def test_javascript_target_refused(cli: Any, kind: str) -> None:
    add_taro(cli)
    result = cli("channel", "add", "--employee", TARO, "--kind", kind, "--target", "javascript:alert(1)")
    assert_one_line_error(result)
    assert ok(cli("channel", "list", "--employee", TARO, "--json")).json == []


def test_sso_only_is_refused_where_no_provider_is_configured(cli: Any, env: dict[str, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Employees would have no way in at all: refused with one line (as the settings page refuses it), nothing
    changed or audited; with the provider's settings it is turned on."""
    ok(cli("company", "set", "--name", "株式会社サンプル商事"))
    error = assert_one_line_error(cli("company", "set", "--sso-only", "on", "--hours", "9-18"))
    assert "single sign-on is not configured" in error and "CONTACTCARD_OIDC_ISSUER" in error
    shown = ok(cli("company", "show", "--json")).json
    assert shown["sso_only"] is False and shown["business_hours"] == ""  # the whole command was refused
    with closing(sqlite3.connect(env["db"])) as conn:
        assert conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'company.sso_only'").fetchone() == (0,)
    assert ok(cli("company", "set", "--sso-only", "off", "--json")).json["sso_only"] is False  # off is always fine

    secret = env["db"].parent / "oidc-client-secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    monkeypatch.setenv("CONTACTCARD_OIDC_ISSUER", "https://id.example.co.jp")
    monkeypatch.setenv("CONTACTCARD_OIDC_CLIENT_ID", "contactcard")
    monkeypatch.setenv("CONTACTCARD_OIDC_CLIENT_SECRET_FILE", str(secret))
    assert ok(cli("company", "set", "--sso-only", "on", "--json")).json["sso_only"] is True


def test_phone_prefix_admits_company_numbers(cli: Any) -> None:
    with_policy(cli)
    add_taro(cli)
    for target in ("tel:03-1234-5678", "tel:+81-3-1234-5678"):
        result = ok(cli("channel", "add", "--employee", TARO, "--kind", "phone", "--target", target, "--json"))
        assert result.json["target"] == "tel:+81312345678"
        assert result.err == ""  # a policy is set: no warning
    ok(cli("channel", "add", "--employee", "1", "--kind", "line", "--target", "https://line.me/R/ti/p/@sample-shoji"))
    channels = ok(cli("channel", "list", "--employee", TARO, "--json")).json
    assert [c["kind"] for c in channels] == ["phone", "phone", "line"]


def test_no_policy_warning_printed_exactly_once(cli: Any) -> None:
    add_taro(cli)
    result = ok(cli("channel", "add", "--employee", TARO, "--kind", "phone", "--target", "tel:090-1234-5678"))
    assert result.err == f"contactcard: warning: {NO_POLICY_WARNING}\n"
    assert result.out.startswith("channel ")
    company = ok(cli("channel", "add", "--company", "--kind", "web", "--target", "https://example.com/"))
    assert company.err.count("warning") == 1
    assert [c["employee_id"] for c in ok(cli("channel", "list", "--json")).json] == [None]


def test_channel_remove(cli: Any) -> None:
    add_taro(cli)
    ok(cli("employee", "add", "--email", HANAKO, "--name", "佐藤 花子"))
    channel = ok(cli("channel", "add", "--employee", TARO, "--kind", "email", "--target", TARO, "--json")).json
    assert_one_line_error(cli("channel", "remove", "--id", str(channel["id"]), "--employee", HANAKO))
    assert ok(cli("channel", "remove", "--id", str(channel["id"]))).out.startswith("removed channel")
    assert ok(cli("channel", "list", "--employee", TARO, "--json")).json == []
    assert_one_line_error(cli("channel", "remove", "--id", str(channel["id"])))


# --- employees ----------------------------------------------------------------------------------------


def test_split_name() -> None:
    assert split_name("山田 太郎", None) == ("山田", "太郎")
    assert split_name("佐藤\u3000花子", None) == ("佐藤", "花子")
    assert split_name("山田", None) == ("山田", "")
    assert split_name("山田 太郎", "太郎") == ("山田", "太郎")
    assert split_name("山田", "太郎") == ("山田", "太郎")


def test_employee_add_list_depart_json(cli: Any) -> None:
    taro = ok(cli("employee", "add", "--email", TARO, "--name", "山田 太郎", "--kana", "ヤマダ タロウ",
                  "--latin", "Taro Yamada", "--title", "課長", "--department", "営業部", "--json")).json
    assert (taro["family_name"], taro["given_name"], taro["family_kana"], taro["given_kana"]) == (
        "山田", "太郎", "ヤマダ", "タロウ")
    assert taro["status"] == "active" and taro["name"] == "山田 太郎"
    hanako = ok(cli("employee", "add", "--email", HANAKO, "--name", "佐藤\u3000花子", "--json")).json
    assert (hanako["family_name"], hanako["given_name"]) == ("佐藤", "花子")
    assert "already exists" in assert_one_line_error(cli("employee", "add", "--email", TARO, "--name", "別人"))
    listed = ok(cli("employee", "list", "--json")).json
    assert sorted(e["email"] for e in listed) == [HANAKO, TARO]
    ok(cli("card", "issue", "--employee", TARO))
    departed = ok(cli("employee", "depart", "--employee", TARO, "--successor", str(hanako["id"]), "--json")).json
    assert departed["status"] == "departed" and departed["successor"] == HANAKO
    cards = ok(cli("card", "list", "--employee", TARO, "--json")).json
    assert [c["status"] for c in cards] == ["departed"]
    assert_one_line_error(cli("card", "issue", "--employee", TARO))
    plain = ok(cli("employee", "list")).out
    assert "[departed]" in plain and HANAKO in plain


# --- cards --------------------------------------------------------------------------------------------


def test_card_lifecycle_json(cli: Any) -> None:
    add_taro(cli)
    issued = ok(cli("card", "issue", "--employee", TARO, "--days", "30", "--label", "展示会", "--json")).json
    assert CARD_URL.fullmatch(issued["url"])
    assert issued["employee"] == TARO and issued["generation"] == 1 and issued["status"] == "live"
    assert isinstance(issued["card_id"], int)
    expires = datetime.fromisoformat(issued["expires_at"])
    assert issued["expires_at"].endswith("Z") and expires.utcoffset() is not None
    assert 29 <= (expires - datetime.now(UTC)).days <= 30

    assert "already has a card" in assert_one_line_error(cli("card", "issue", "--employee", TARO))

    rotated = ok(cli("card", "rotate", "--employee", TARO, "--json")).json
    assert CARD_URL.fullmatch(rotated["url"]) and rotated["url"] != issued["url"]
    assert rotated["generation"] == 2

    assert "days" in assert_one_line_error(cli("card", "extend", "--employee", TARO, "--days", "0"))
    extended = ok(cli("card", "extend", "--employee", TARO, "--days", "7", "--json")).json
    assert extended["url"] == rotated["url"]
    assert (datetime.fromisoformat(extended["expires_at"]) - datetime.now(UTC)).days in (6, 7)

    revoked = ok(cli("card", "revoke", "--employee", TARO, "--json")).json
    assert revoked["status"] == "revoked" and datetime.fromisoformat(revoked["revoked_at"])
    assert_one_line_error(cli("card", "revoke", "--employee", TARO))

    listed = ok(cli("card", "list", "--json")).json
    assert [(c["generation"], c["status"]) for c in listed] == [(1, "revoked"), (2, "revoked")]
    assert all({"url", "expires_at", "generation", "status"} <= c.keys() for c in listed)


def test_card_expiring_lists_the_live_links_about_to_expire_soonest_first(cli: Any) -> None:
    add_taro(cli)
    ok(cli("employee", "add", "--email", HANAKO, "--name", "佐藤 花子"))
    ok(cli("card", "issue", "--employee", HANAKO, "--days", "30"))
    ok(cli("card", "issue", "--employee", TARO, "--days", "10"))
    soon = ok(cli("card", "expiring", "--json")).json  # the company's notice: 14 days (90-day links)
    assert [(c["employee"], c["generation"]) for c in soon] == [(TARO, 1)]
    assert 9 <= (datetime.fromisoformat(soon[0]["expires_at"]) - datetime.now(UTC)).days <= 10
    within = ok(cli("card", "expiring", "--within", "31", "--json")).json
    assert [c["employee"] for c in within] == [TARO, HANAKO]
    assert ok(cli("card", "expiring")).out.startswith(f"{TARO}\tgen 1\texpires ")
    assert "--within" in assert_one_line_error(cli("card", "expiring", "--within", "0"), code=2)
    assert "days" in assert_one_line_error(cli("card", "extend-expiring", "--days", "0"))
    assert ok(cli("card", "extend-expiring", "--days", "60", "--json")).json == {"extended": 1}
    assert ok(cli("card", "expiring", "--json")).json == []
    assert ok(cli("card", "extend-expiring")).out == "extended 0 links about to expire\n"
    ok(cli("card", "revoke", "--employee", HANAKO))
    assert ok(cli("card", "expiring", "--within", "31", "--json")).json == []


def test_card_issue_plain_output(cli: Any) -> None:
    add_taro(cli)
    lines = ok(cli("card", "issue", "--employee", TARO)).out.splitlines()
    assert CARD_URL.fullmatch(lines[0])
    assert lines[1].startswith("expires ") and "Asia/Tokyo" in lines[1]
    listed = ok(cli("card", "list")).out
    assert lines[0] in listed and "live" in listed


def test_card_qr_png_decodes_to_the_link(cli: Any, tmp_path: Path) -> None:
    add_taro(cli)
    output = tmp_path / "taro.png"
    assert "no live card" in assert_one_line_error(
        cli("card", "qr", "--employee", TARO, "--format", "png", "--output", str(output)))
    url = ok(cli("card", "issue", "--employee", TARO, "--json")).json["url"]
    lines = ok(cli("card", "qr", "--employee", TARO, "--format", "png", "--output", str(output),
                   "--box-size", "8")).out.splitlines()
    assert lines == [str(output), url]
    assert zxingcpp.read_barcodes(Image.open(output))[0].text == url
    assert stat.S_IMODE(output.stat().st_mode) == 0o666 & ~_umask()
    svg = tmp_path / "taro.svg"
    ok(cli("card", "qr", "--employee", TARO, "--output", str(svg)))  # format from the suffix
    assert b"<svg" in svg.read_bytes()
    assert_one_line_error(cli("card", "qr", "--employee", TARO, "--output", str(tmp_path / "x.gif")), code=2)
    assert_one_line_error(cli("card", "qr", "--employee", TARO, "--output", str(tmp_path / "no" / "dir.png")))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- scans --------------------------------------------------------------------------------------------


def test_scans_list_empty(cli: Any) -> None:
    assert ok(cli("scans", "list", "--json")).json == []
    assert ok(cli("scans", "list")).out == ""


def test_scans_list_and_csv_export(cli: Any, env: dict[str, Path], tmp_path: Path) -> None:
    add_taro(cli)
    ok(cli("card", "issue", "--employee", TARO))
    formula = '=HYPERLINK("https://evil.example/","click")'
    t0 = datetime(2025, 4, 1, 3, 0, tzinfo=UTC)
    insert_events(env["db"], [
        ScanEvent(time=t0, outcome=Outcome.VIEW, card_id=1, employee_id=1, user_agent="Mozilla/5.0",
                  visitor_key="ab" * 16, device="iPhone", os="iOS", browser="Mobile Safari"),
        ScanEvent(time=t0.replace(minute=5), outcome=Outcome.CLICK, card_id=1, employee_id=1, channel_kind="phone",
                  user_agent=formula, referrer="@SUM(1+1)"),
        ScanEvent(time=t0.replace(minute=9), outcome=Outcome.MALFORMED, user_agent="\x1b[31mred", is_bot=True,
                  device="Spider"),
    ])
    events = ok(cli("scans", "list", "--json")).json
    assert [e["outcome"] for e in events] == ["malformed", "click", "view"]  # newest first
    assert events[1]["time"] == "2025-04-01T03:05:00Z"
    assert (events[1]["employee"], events[1]["channel"], events[1]["user_agent"]) == (TARO, "phone", formula)
    assert (events[0]["employee"], events[0]["channel"], events[2]["visitor"]) == (None, None, "ab" * 16)
    # the bot flag and device the console shows (a bot is recorded, never counted as a person)
    assert [(e["is_bot"], e["device"], e["os"], e["browser"]) for e in events] == [
        (True, "Spider", "", ""), (False, "", "", ""), (False, "iPhone", "iOS", "Mobile Safari")]
    assert len(ok(cli("scans", "list", "--employee", TARO, "--limit", "1", "--json")).json) == 1
    assert "\x1b" not in ok(cli("scans", "list")).out  # untrusted text never reaches the terminal raw
    assert_one_line_error(cli("scans", "list", "--limit", "0"), code=2)

    output = tmp_path / "scans.csv"
    assert "3 scans" in ok(cli("scans", "export", "--csv", "--output", str(output))).out
    raw = output.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["outcome"] for r in rows] == ["malformed", "click", "view"]
    assert rows[1]["user_agent"] == "'" + formula
    assert rows[1]["referrer"] == "'@SUM(1+1)"
    assert rows[2]["user_agent"] == "Mozilla/5.0" and rows[1]["employee"] == TARO
    assert list(rows[0]) == ["id", "time", "outcome", "employee", "channel", "card_id", "user_agent", "referrer",
                             "accept_language", "visitor", "local_time", "is_bot", "device", "os", "browser"]
    assert [(r["is_bot"], r["device"], r["os"], r["browser"]) for r in rows] == [
        ("1", "Spider", "", ""), ("0", "", "", ""), ("0", "iPhone", "iOS", "Mobile Safari")]
    assert rows[2]["local_time"] == "2025-04-01 12:00:00"  # Asia/Tokyo, the default zone

    stdout = ok(cli("scans", "export", "--csv")).out
    assert stdout.startswith("\ufeffid,time,outcome")
    assert len(list(csv.reader(io.StringIO(stdout)))) == 4
    assert_one_line_error(cli("scans", "export"), code=2)


def test_scans_export_pages_through_everything(cli: Any, env: dict[str, Path], tmp_path: Path) -> None:
    ok(cli("migrate"))
    t0 = datetime(2025, 4, 1, tzinfo=UTC)
    insert_events(env["db"], [ScanEvent(time=t0, outcome=Outcome.UNKNOWN, user_agent=f"ua{i}") for i in range(1203)])
    output = tmp_path / "all.csv"
    ok(cli("scans", "export", "--csv", "--output", str(output)))
    rows = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 1203 and len({r["id"] for r in rows}) == 1203


# --- demo ---------------------------------------------------------------------------------------------


def test_demo_no_serve_is_idempotent(cli: Any) -> None:
    first = ok(cli("demo", "--no-serve")).out
    second = ok(cli("demo", "--no-serve")).out
    assert first.splitlines()[0].startswith("株式会社サンプル商事")
    urls = CARD_URL.findall(first)
    assert len(set(urls)) == 2 and CARD_URL.findall(second) == urls
    assert f"{BASE_URL}/admin" in first
    assert len(ok(cli("employee", "list", "--json")).json) == 2
    assert [c["status"] for c in ok(cli("card", "list", "--json")).json] == ["live", "live"]
    company = ok(cli("company", "show", "--json")).json
    assert company["policy"]["line_ids"] == ["@sample-shoji"] and len(company["channels"]) == 3
    taro_channels = ok(cli("channel", "list", "--employee", TARO, "--json")).json
    assert len(taro_channels) == 4


def test_demo_refuses_someone_elses_database(cli: Any) -> None:
    ok(cli("company", "set", "--name", "本物の会社"))
    assert "本物の会社" in assert_one_line_error(cli("demo", "--no-serve"))
    assert ok(cli("employee", "list", "--json")).json == []
