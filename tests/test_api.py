"""The JSON API (/api/v1) and its tokens, request by request against the real app and database.

Scopes hold (a read token cannot write: 403, nothing written); an expired or revoked token is 401 and writes
nothing; the policy refuses what the console refuses with the console's own message; every change is audited as
``api:NAME``; a token past its rate gets 429 with Retry-After; the QR codes decode to the card's link; the CSV
export streams; scans page by keyset like the console's log. ``test_api_schema`` fuzzes the whole API against its
OpenAPI document.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import sqlite3
from typing import Any

import cairosvg
import httpx2 as httpx
import pytest
import zxingcpp
from PIL import Image
from starlette.testclient import TestClient

from contactcard.app import create_app
from contactcard.config import Settings

from .accounts_kit import csrf_of
from .conftest import BASE_URL, Cli, FakeClock, Harness
from .test_policy_end_to_end import BYPASSES

TARO = "taro@example.co.jp"
TABLES = ("employees", "channels", "cards", "audit", "api_tokens")


def token(h: Harness, name: str, scope: str, days: int = 90) -> str:
    return h.run(h.ctx.api_tokens.create, name, scope, days=days, actor="cli")[1]


def call(h: Harness, method: str, path: str, secret: str | None, body: Any = None, **params: Any) -> httpx.Response:
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    return h.client.request(method, "/api/v1" + path, headers=headers, json=body, params=params or None)


def snapshot(settings: Settings) -> dict[str, list[Any]]:
    conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    finally:
        conn.close()


def problem(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"] == f"urn:contactcard:problem:{kind}", body
    return body


@pytest.fixture
def seeded(harness: Harness) -> Harness:
    harness.seed()
    return harness


# --- scopes and token states --------------------------------------------------------------------------


def test_each_scope_reaches_only_its_operations_and_a_refusal_writes_nothing(
        seeded: Harness, settings: Settings) -> None:
    h = seeded
    read, write, scans = token(h, "reader", "read"), token(h, "writer", "write"), token(h, "feed", "scans")
    before = snapshot(settings)
    assert call(h, "GET", "/employees", read).status_code == 200
    assert call(h, "GET", "/employees/1/card", read).status_code == 200
    for method, path, body in [("POST", "/employees", {"email": "x@example.co.jp", "family_name": "x"}),
                               ("POST", "/employees/1/card/revoke", None), ("DELETE", "/employees/1/channels/1", None),
                               ("PATCH", "/employees/1", {"title": "部長"})]:
        r = call(h, method, path, read, body)
        assert problem(r, 403, "insufficient-scope")["detail"] == "this needs a token with the 'write' scope"
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        problem(call(h, method, path, scans, body), 403, "insufficient-scope")
    problem(call(h, "GET", "/employees", scans), 403, "insufficient-scope")
    problem(call(h, "GET", "/scans", read), 403, "insufficient-scope")
    problem(call(h, "GET", "/scans/export.csv", write), 403, "insufficient-scope")
    assert snapshot(settings) == before, "no refused request wrote anything"
    assert call(h, "GET", "/scans", scans).status_code == 200
    assert call(h, "PATCH", "/employees/1", write, {"title": "部長"}).json()["title"] == "部長"


def test_missing_unknown_expired_and_revoked_tokens_are_401_and_write_nothing(
        seeded: Harness, settings: Settings, clock: FakeClock) -> None:
    h = seeded
    short, revoked = token(h, "short", "write", days=1), token(h, "gone", "write")
    assert call(h, "GET", "/employees", short).status_code == 200
    h.run(h.ctx.api_tokens.revoke, "gone", actor="cli")
    clock.advance(days=1)
    before = snapshot(settings)
    new = {"email": "hanako@example.co.jp", "family_name": "佐藤"}
    for secret in (None, "", "cc_" + "x" * 43, short, revoked, short + "x", short[:-1]):
        r = call(h, "POST", "/employees", secret, new)
        body = problem(r, 401, "unauthorized")
        assert body["detail"] == "a valid API token is required", "the answer never says which check failed"
        assert r.headers["www-authenticate"].startswith("Bearer ")
    assert call(h, "POST", "/employees", short, new, ).status_code == 401
    # A browser's signed-in session is no way in either: the API reads no cookie.
    h.client.cookies.set("cc_session", "whatever")
    problem(call(h, "POST", "/employees", None, new), 401, "unauthorized")
    assert snapshot(settings) == before


def test_tokens_are_stored_hashed_and_printed_once_by_the_cli(
        settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cli = Cli(capsys)
    monkeypatch.setenv("CONTACTCARD_DB", str(settings.db_path))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(settings.secret_file))
    created = cli.json("api", "token", "create", "--name", "crm", "--scope", "write", "--days", "30")
    secret = created["token"]
    assert re.fullmatch(r"cc_[A-Za-z0-9_-]{43}", secret)
    assert created["name"] == "crm" and created["scope"] == "write" and created["actor"] == "api:crm"
    assert created["revoked_at"] is None
    listed = cli.json("api", "token", "list")
    assert [t["name"] for t in listed] == ["crm"] and "token" not in listed[0]
    assert secret not in cli.ok("api", "token", "list")
    stored = b"".join(f.read_bytes() for f in settings.db_path.parent.glob(settings.db_path.name + "*"))
    assert hashlib.sha256(secret.encode()).digest() in stored, "the hash is stored (main file or WAL) ..."
    assert secret.encode() not in stored, "... and only the hash"
    assert "never reused" in cli.refused("api", "token", "create", "--name", "crm", "--scope", "read")
    assert cli.refused("api", "token", "create", "--name", "bad name", "--scope", "read").startswith(
        "contactcard: error: a token name is")
    code, _, err = cli("api", "token", "create", "--name", "x", "--scope", "admin")
    assert code == 2 and "invalid choice" in err
    revoked = cli.json("api", "token", "revoke", "--name", "crm")
    assert revoked["revoked_at"] is not None
    assert "no API token" in cli.refused("api", "token", "revoke", "--name", "nobody")
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.get("/api/v1/employees", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 401
        actions = [(a.actor, a.action) for a in Harness(client).run(Harness(client).service.audit_log)]
    assert actions[:2] == [("cli", "api_token.revoke"), ("cli", "api_token.create")]


def test_a_name_is_never_reused(seeded: Harness) -> None:
    token(seeded, "crm", "read")
    seeded.run(seeded.ctx.api_tokens.revoke, "crm", actor="cli")
    with pytest.raises(Exception, match="never reused"):
        token(seeded, "crm", "read")


def test_the_console_lists_creates_and_revokes_tokens(seeded: Harness, admin_client: TestClient) -> None:
    h = seeded
    page = admin_client.get("/admin/api-tokens")
    assert page.status_code == 200 and "APIトークン" in page.text
    r = admin_client.post("/admin/api-tokens", data={"csrf": csrf_of(page.text), "name": "kintone",
                                                     "scope": "scans", "days": "30"})
    assert r.status_code == 200
    secret = re.search(r'id="new-token" class="mono" readonly value="(cc_[^"]+)"', r.text)
    assert secret is not None
    assert call(h, "GET", "/scans", secret[1]).status_code == 200
    refused = admin_client.post("/admin/api-tokens", data={"csrf": csrf_of(page.text), "name": "kintone",
                                                           "scope": "read", "days": "30"})
    assert refused.status_code == 400 and "名前は再利用できません" in refused.text, "the console speaks Japanese"
    listed = admin_client.get("/admin/api-tokens").text
    assert secret[1] not in listed and "kintone" in listed
    kintone = h.run(h.ctx.api_tokens.find, "kintone")
    assert admin_client.post(f"/admin/api-tokens/{kintone.id}/revoke", data={}).status_code == 403, "CSRF"
    assert call(h, "GET", "/scans", secret[1]).status_code == 200
    r = admin_client.post(f"/admin/api-tokens/{kintone.id}/revoke", data={"csrf": csrf_of(listed)})
    assert r.status_code == 303 and r.headers["location"] == "/admin/api-tokens?done=token_revoked"
    problem(call(h, "GET", "/scans", secret[1]), 401, "unauthorized")
    assert admin_client.post("/admin/api-tokens/999/revoke", data={"csrf": csrf_of(listed)}).status_code == 404
    actions = [(a.actor, a.action) for a in h.run(h.service.audit_log)][:2]
    assert actions == [("admin@example.co.jp", "api_token.revoke"), ("admin@example.co.jp", "api_token.create")]


# --- the use cases through the API --------------------------------------------------------------------


REFUSED = [*BYPASSES, ("email", "taro.private@gmail.com"), ("phone", "090-1234-5678"),
           ("line", "https://line.me/R/ti/p/@someone_else")]


def test_policy_refusals_are_the_consoles(seeded: Harness, admin_client: TestClient, settings: Settings) -> None:
    """The API refuses what the console refuses, saying the same: in English by default (the CLI's words), in
    Japanese for a client whose Accept-Language prefers it (the console's default)."""
    h = seeded
    secret = token(h, "crm", "write")
    before = snapshot(settings)
    csrf = csrf_of(admin_client.get("/admin/employees/1").text)
    for kind, target in REFUSED:
        for lang, accept in (("en", None), ("en", "fr-FR, en;q=0.5"), ("ja", "ja,en-US;q=0.9")):
            headers = {"Authorization": f"Bearer {secret}", **({"Accept-Language": accept} if accept else {})}
            r = h.client.post("/api/v1/employees/1/channels", headers=headers, json={"kind": kind, "target": target})
            api = r.json()
            assert r.status_code == 422 and api["type"] in ("urn:contactcard:problem:policy",  # outside the policy
                                                            "urn:contactcard:problem:validation"), api  # no channel
            assert r.headers["content-language"] == lang
            console = admin_client.post(f"/admin/employees/1/channels?lang={lang}",
                                        data={"csrf": csrf, "kind": kind, "target": target})
            assert console.status_code == 400
            shown = re.search(r'id="channel-error">(.*?)</p>', console.text, re.S)
            assert shown is not None
            assert html.unescape(shown[1]).endswith(api["detail"]), (lang, shown[1], api["detail"])
            if lang == "ja":
                assert api["detail"] != h.client.post("/api/v1/employees/1/channels", headers=headers | {
                    "Accept-Language": "en"}, json={"kind": kind, "target": target}).json()["detail"]
    assert snapshot(settings) == before


def test_a_personal_contact_in_printed_text_is_refused_like_in_the_console(seeded: Harness) -> None:
    h = seeded
    secret = token(h, "crm", "write")
    r = call(h, "PATCH", "/employees/1", secret, {"title": "個人LINE: taro_private"})
    assert problem(r, 422, "policy")["detail"].startswith("the title must not carry")
    r = call(h, "POST", "/employees/1/channels", secret, {"kind": "phone", "target": "tel:03-1234-5680",
                                                          "label": "携帯 090-1234-5678"})
    problem(r, 422, "policy")


def test_every_change_is_audited_with_the_tokens_name(seeded: Harness) -> None:
    h = seeded
    secret = token(h, "hubspot", "write")
    hanako = call(h, "POST", "/employees", secret, {"email": "hanako@example.co.jp", "family_name": "佐藤",
                                                    "title": "主任"})
    assert hanako.status_code == 201
    hid = hanako.json()["id"]
    assert call(h, "PATCH", f"/employees/{hid}", secret, {"department": "営業部"}).json()["department"] == "営業部"
    channel = call(h, "POST", f"/employees/{hid}/channels", secret, {"kind": "phone", "target": "03-1234-7777"})
    assert channel.status_code == 201 and channel.json()["kind"] == "phone"
    second = call(h, "POST", f"/employees/{hid}/channels", secret, {"kind": "email", "target": "hanako@example.co.jp"})
    moved = call(h, "POST", f"/employees/{hid}/channels/{second.json()['id']}/move", secret, {"direction": "up"})
    assert [c["id"] for c in moved.json()] == [second.json()["id"], channel.json()["id"]]
    assert call(h, "DELETE", f"/employees/{hid}/channels/{channel.json()['id']}", secret).status_code == 204
    issued = call(h, "POST", f"/employees/{hid}/card", secret, {"days": 10})
    assert issued.status_code == 201 and issued.json()["status"] == "live"
    assert issued.json()["expires_at"] == "2026-12-08T01:00:00Z"
    rotated = call(h, "POST", f"/employees/{hid}/card/rotate", secret)
    assert rotated.json()["generation"] == 2 and rotated.json()["url"] != issued.json()["url"]
    assert call(h, "POST", f"/employees/{hid}/card/extend", secret, {"days": 5}).json()["expires_at"] == \
        "2026-12-03T01:00:00Z"
    assert call(h, "POST", f"/employees/{hid}/card/revoke", secret).json()["status"] == "revoked"
    problem(call(h, "POST", f"/employees/{hid}/card/revoke", secret), 409, "conflict")
    departed = call(h, "POST", "/employees/1/depart", secret, {"successor_id": hid})
    assert departed.json()["status"] == "departed" and departed.json()["successor_id"] == hid
    problem(call(h, "POST", "/employees/1/depart", secret, {}), 409, "conflict")
    rows = h.run(h.service.audit_log, actor="api:hubspot")
    assert sorted(r.action for r in rows) == sorted([
        "employee.add", "employee.update", "channel.add", "channel.add", "channel.reorder", "channel.remove",
        "card.issue", "card.rotate", "card.extend", "card.revoke", "employee.depart"])
    # the successor now answers the departed employee's old link
    assert h.client.get(h.path(h.run(h.service.cards, 1)[0])).status_code == 410


def test_unknown_ids_paths_and_successors(seeded: Harness) -> None:
    h = seeded
    secret = token(h, "crm", "write")
    problem(call(h, "GET", "/employees/999", secret), 404, "not-found")
    problem(call(h, "GET", "/employees/99999999999999999999", secret), 404, "not-found")
    r = call(h, "GET", "/employees/x", secret)
    assert r.status_code == 404 and r.json()["type"] == "about:blank", "an unknown path is a problem too"
    problem(call(h, "DELETE", "/employees/1/channels/999", secret), 404, "not-found")
    problem(call(h, "POST", "/employees/1/depart", secret, {"successor_id": 999}), 422, "validation")
    bad = h.client.post("/api/v1/employees", content=b"{not json", headers={"Authorization": f"Bearer {secret}"})
    problem(bad, 400, "malformed")
    extra = problem(call(h, "POST", "/employees", secret, {"email": "a@example.co.jp", "family_name": "a", "x": 1}),
                    422, "validation")
    assert extra["errors"] == [{"location": "body.x", "message": "Extra inputs are not permitted"}]
    problem(call(h, "POST", "/employees", secret, {"email": TARO, "family_name": "重複"}), 409, "conflict")
    problem(call(h, "POST", "/employees/1/card", secret, {"days": "10"}), 422, "validation")
    r = h.client.request("PUT", "/api/v1/employees", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"


def test_a_token_past_its_rate_gets_429_with_retry_after(settings: Settings, clock: FakeClock) -> None:
    limited = Settings(db_path=settings.db_path, base_url=BASE_URL, secret_file=settings.secret_file,
                       api_rate_limit=3)
    with TestClient(create_app(limited, clock=clock), base_url="http://127.0.0.1") as client:
        h = Harness(client)
        h.seed()
        busy, other = token(h, "busy", "read"), token(h, "other", "read")
        assert [call(h, "GET", "/employees", busy).status_code for _ in range(3)] == [200, 200, 200]
        r = call(h, "GET", "/employees", busy)
        assert problem(r, 429, "rate-limited") and r.headers["retry-after"] == "20"
        assert call(h, "GET", "/employees", other).status_code == 200, "each token has its own allowance"
        clock.advance(seconds=19)
        assert call(h, "GET", "/employees", busy).status_code == 429
        clock.advance(seconds=1)
        assert call(h, "GET", "/employees", busy).status_code == 200
        # The clock steps back an hour (review finding 17's variant, for the API): the wait stays the one earned,
        # it does not grow by the size of the step (the bucket refilled nothing until the clock caught up).
        clock.advance(hours=-1)
        stepped = call(h, "GET", "/employees", busy)
        assert stepped.status_code == 429 and int(stepped.headers["retry-after"]) <= 20
        clock.advance(seconds=20)
        assert call(h, "GET", "/employees", busy).status_code == 200


# --- QR codes, scans and the CSV ----------------------------------------------------------------------


def test_the_links_about_to_expire_soonest_first(seeded: Harness, clock: FakeClock) -> None:
    h = seeded
    secret = token(h, "renewals", "read", days=365)
    assert call(h, "GET", "/cards/expiring", secret).json() == []  # taro's 90-day link is not due yet
    clock.advance(days=80)
    due = call(h, "GET", "/cards/expiring", secret).json()
    assert [(c["employee_id"], c["status"], c["expires_at"]) for c in due] == [(1, "live", "2027-02-26T01:00:00Z")]
    assert call(h, "GET", "/cards/expiring", secret, within_days=9).json() == []
    problem(call(h, "GET", "/cards/expiring", secret, within_days=0), 422, "validation")
    problem(call(h, "POST", "/cards/expiring/extend", secret, {"days": 90}), 403, "insufficient-scope")
    writer = token(h, "renewer", "write", days=365)
    problem(call(h, "POST", "/cards/expiring/extend", writer, {"days": 0}), 422, "validation")
    assert call(h, "POST", "/cards/expiring/extend", writer, {"days": 90}).json() == {"extended": 1}
    assert call(h, "GET", "/cards/expiring", secret).json() == []
    assert call(h, "GET", "/employees/1/card", secret).json()["expires_at"] == "2027-05-17T01:00:00Z"
    assert call(h, "POST", "/cards/expiring/extend", writer).json() == {"extended": 0}


def test_the_qr_codes_decode_to_the_card_link(seeded: Harness) -> None:
    h = seeded
    secret = token(h, "crm", "read")
    url = call(h, "GET", "/employees/1/card", secret).json()["url"]
    assert url == h.run(h.service.current_card, 1).url and url.startswith(BASE_URL + "/c/")  # type: ignore[union-attr]
    png = call(h, "GET", "/employees/1/card/qr.png", secret)
    assert png.headers["content-type"] == "image/png"
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))] == [url]
    svg = call(h, "GET", "/employees/1/card/qr.svg", secret)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    raster = cairosvg.svg2png(bytestring=svg.content, background_color="white", output_width=600)
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(raster)))] == [url]
    h.run(h.service.revoke_card, 1, actor="cli")
    problem(call(h, "GET", "/employees/1/card/qr.png", secret), 404, "not-found")


def _scans(h: Harness, count: int) -> None:
    issued = h.run(h.service.current_card, 1)
    assert issued is not None
    for _ in range(count):
        assert h.client.get(h.path(issued)).status_code == 200
    assert h.client.get("/c/unknownunknownunknow").status_code == 404


def test_scans_page_by_keyset_with_the_consoles_filters(seeded: Harness, clock: FakeClock) -> None:
    h = seeded
    _scans(h, 7)
    feed = token(h, "feed", "scans")
    ids = [e.id for e in reversed(h.events())]  # newest first
    first = call(h, "GET", "/scans", feed, limit=3).json()
    assert [s["id"] for s in first["items"]] == ids[:3] and first["newer"] is None
    assert first["total"] == 8 and not first["total_capped"]
    second = h.client.get("/api/v1/scans?" + first["older"], headers={"Authorization": f"Bearer {feed}"}).json()
    assert [s["id"] for s in second["items"]] == ids[3:6]
    back = h.client.get("/api/v1/scans?" + second["newer"], headers={"Authorization": f"Bearer {feed}"}).json()
    assert [s["id"] for s in back["items"]] == ids[:3]
    only = call(h, "GET", "/scans", feed, outcome="unknown").json()
    assert [s["outcome"] for s in only["items"]] == ["unknown"] and only["items"][0]["employee_id"] is None
    taro = call(h, "GET", "/scans", feed, employee_id=1, limit=500).json()
    assert len(taro["items"]) == 7 and taro["older"] is None
    # local days in Tokyo: the scans happened on 2026-11-28 at 10:00 there
    assert len(call(h, "GET", "/scans", feed, **{"from": "2026-11-28", "to": "2026-11-28"}).json()["items"]) == 8
    assert call(h, "GET", "/scans", feed, **{"from": "2026-11-29", "to": "2026-11-29"}).json()["items"] == []
    wrong = problem(call(h, "GET", "/scans", feed, **{"from": "2026-11-29", "to": "2026-11-01"}), 422, "validation")
    assert "after" in wrong["detail"]
    problem(call(h, "GET", "/scans", feed, **{"from": "0001-01-01"}), 422, "validation")
    problem(call(h, "GET", "/scans", feed, outcome="nope"), 422, "validation")
    stats = call(h, "GET", "/scans/stats", feed, days=7, employee_id=1).json()
    assert len(stats["days"]) == 7 and stats["total"]["scans"] == 7 and stats["total"]["unique_visitors"] == 1


def test_the_csv_export_streams_every_row(seeded: Harness, settings: Settings) -> None:
    h = seeded
    _scans(h, 3)
    issued = h.run(h.service.current_card, 1)
    assert issued is not None
    assert h.client.get(h.path(issued), headers={"user-agent": '=HYPERLINK("https://evil.example")'}).status_code == 200
    feed = token(h, "feed", "scans")
    with h.client.stream("GET", "/api/v1/scans/export.csv", headers={"Authorization": f"Bearer {feed}"},
                         params={"employee_id": 1}) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
        assert "content-length" not in r.headers, "streamed, not built in memory first"
        chunks = [c for c in r.iter_bytes() if c]
    text = b"".join(chunks).decode("utf-8")
    assert text.startswith("\ufeff")
    lines = text.splitlines()
    assert len(lines) == 1 + 4, "the header and Taro's four events (the unknown link is filtered out)"
    assert "'=HYPERLINK" in text, "formula cells are neutralised as in the console's export"
