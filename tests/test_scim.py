"""SCIM 2.0 provisioning at /scim/v2 (issue 11 parts 2 and 3).

- the compliance checker scim2-tester against a real ``contactcard serve`` (one server for the module);
- Entra ID's PATCH forms, deactivation (card revoked "deprovisioned", sessions ended, the old link introduces the
  manager as successor or routes to the company), re-activation that does not revive the link, DELETE;
- 401s that write nothing, SCIM errors with their scimType, the CLI's tokens, the audit trail and settings page.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
from starlette.testclient import TestClient

from contactcard.app import create_app
from contactcard.config import Settings
from contactcard.models import EmployeeProfile, IssuedCard
from contactcard.scim import ENTERPRISE, PHONETIC

from .accounts_kit import ADMIN_EMAIL, PASSWORD, accounts, login, make_admin, post_form
from .conftest import Cli, FakeClock, Harness
from .live_server import LiveServer

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
TARO = "taro@example.co.jp"
HANAKO = "hanako@example.co.jp"


# --- the compliance checker against the real server -------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    tmp = tmp_path_factory.mktemp("scim")
    server = LiveServer({"CONTACTCARD_DB": str(tmp / "cc.sqlite3"), "CONTACTCARD_SECRET_FILE": str(tmp / "secret.key")},
                        tmp / "server.log")
    server.cli("migrate")
    token = json.loads(server.cli("scim", "token", "create", "--json"))["token"]
    server.start()
    try:
        yield server, token
    finally:
        server.stop()


@pytest.mark.slow
def test_scim2_tester_finds_no_failure(live: tuple[LiveServer, str]) -> None:
    server, token = live
    with httpx2.Client(base_url=f"{server.base}/scim/v2", headers={"Authorization": f"Bearer {token}"}) as http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client)
    failures = [(r.title, r.reason) for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    assert failures == []
    statuses = Counter(r.status for r in results)
    users = Counter(r.status for r in results if r.resource_type == "User")
    # 70 successes when written (discovery, CRUD, attributes, every PATCH add/remove/replace); the one skip is
    # POST /.search over every resource type, which we answer 501 (only /Users/.search is served)
    assert statuses[Status.SUCCESS] >= 70 and users[Status.SUCCESS] >= 40, statuses
    assert [r.title for r in results if r.status is Status.SKIPPED] == ["search_with_attributes"]
    checked = {r.title for r in results if r.resource_type == "User" and r.status is Status.SUCCESS}
    assert {"object_creation", "object_query", "object_query_without_id", "object_replacement", "object_deletion",
            "check_add_attribute", "check_remove_attribute", "check_replace_attribute"} <= checked


# --- in process --------------------------------------------------------------------------------------


@pytest.fixture
def token(harness: Harness) -> str:
    return harness.run(harness.service.create_scim_token, actor="test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def patch(h: Harness, token: str, employee_id: int, *operations: dict[str, Any]) -> Any:
    r = h.client.patch(f"/scim/v2/Users/{employee_id}", headers=bearer(token),
                       json={"schemas": [PATCH_OP], "Operations": list(operations)})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/scim+json")
    return r.json()


def audit(h: Harness, actor: str = "scim") -> list[tuple[str, str, Any, Any]]:
    rows = h.run(h.service.audit_log, actor=actor)
    return [(r.action, r.target, json.loads(r.before or "null"), json.loads(r.after or "null")) for r in rows]


def two_employees(h: Harness) -> tuple[IssuedCard, int, int]:
    """taro (seeded, with a live card and channels) and hanako (live card), both made in the console."""
    card = h.seed()
    h.run(h.service.add_employee, EmployeeProfile(email=HANAKO, family_name="佐藤", given_name="花子"), actor="test")
    h.run(h.service.issue_card, HANAKO, actor="test")
    taro = h.run(h.service.find_employee, TARO)
    hanako = h.run(h.service.find_employee, HANAKO)
    return card, taro.id, hanako.id


def card_page(h: Harness, card: IssuedCard) -> Any:
    """The customer's page of a link, in English."""
    return h.client.get(h.path(card), headers={"Accept-Language": "en"})


def signed_in_employee(h: Harness, settings: Settings) -> TestClient:
    """A second browser: taro signed in on /me."""
    link = h.run(accounts(h).invite_employee, h.run(h.service.find_employee, TARO).id, actor="test")
    h.run(accounts(h).accept_link, link.token, PASSWORD)
    phone = TestClient(h.client.app, base_url="http://127.0.0.1", follow_redirects=False)
    assert login(phone, TARO).status_code == 303
    assert phone.get("/me").status_code == 200
    return phone


def test_entra_deactivation_revokes_the_card_ends_sessions_and_introduces_the_manager(
        harness: Harness, token: str, settings: Settings) -> None:
    h = harness
    card, taro, hanako = two_employees(h)
    phone = signed_in_employee(h, settings)
    assert card_page(h, card).status_code == 200
    # Entra ID first finds the user by userName, then sends its PATCH forms: manager as a bare id, "False" as text
    found = h.client.get("/scim/v2/Users", params={"filter": f'userName eq "{TARO.upper()}"'}, headers=bearer(token))
    assert found.json()["totalResults"] == 1 and found.json()["Resources"][0]["id"] == str(taro)
    shown = patch(h, token, taro,
                  {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": str(hanako)},
                  {"op": "Replace", "path": "active", "value": "False"})
    assert shown["active"] is False and shown[ENTERPRISE]["manager"] == {"value": str(hanako)}

    page = card_page(h, card)
    assert page.status_code == 410  # as every ended link
    assert "Your contact has changed" in page.text and "佐藤 花子" in page.text
    hanako_card = h.run(h.service.current_card, HANAKO)
    assert hanako_card is not None and h.path(hanako_card) in page.text  # a link to the successor's card
    old = h.run(h.service.card, card.card.id)
    assert old is not None and old.revoked_reason == "deprovisioned" and old.revoked_at == h.service.clock()
    assert phone.get("/me").status_code == 303, "taro's session ended at once"
    assert h.run(h.service._store.count_sessions, None) == 0

    action, target, before, after = audit(h)[0]
    assert (action, target) == ("scim.user.update", f"employee:{taro}")
    assert before["status"] == "active" and after["status"] == "departed"
    assert after["successor_id"] == hanako and after["revoked_card_id"] == card.card.id
    assert after["sessions_ended"] == 1 and before["manager_id"] is None and after["manager_id"] == hanako


def test_reactivation_does_not_revive_the_old_link(harness: Harness, token: str) -> None:
    h = harness
    card, taro, hanako = two_employees(h)
    patch(h, token, taro, {"op": "replace", "value": {"active": False,
                                                       f"{ENTERPRISE}:manager": str(hanako)}})  # no path
    assert "佐藤 花子" in card_page(h, card).text
    shown = patch(h, token, taro, {"op": "Replace", "path": "active", "value": "True"})
    assert shown["active"] is True
    page = card_page(h, card)
    assert page.status_code == 410 and "佐藤 花子" not in page.text  # routes to the company, no successor
    assert h.run(h.service.current_card, TARO) is None
    new = h.run(h.service.issue_card, TARO, actor="admin")  # an admin issues a new card
    assert card_page(h, new).status_code == 200
    assert card_page(h, card).status_code == 410
    assert audit(h)[0][3]["status"] == "active"


def test_delete_deprovisions_routes_to_the_company_and_the_user_is_gone(harness: Harness, token: str) -> None:
    h = harness
    card, taro, _ = two_employees(h)
    assert h.client.delete(f"/scim/v2/Users/{taro}", headers=bearer(token)).status_code == 204
    assert h.client.get(f"/scim/v2/Users/{taro}", headers=bearer(token)).status_code == 404
    assert h.client.delete(f"/scim/v2/Users/{taro}", headers=bearer(token)).status_code == 404
    listed = h.client.get("/scim/v2/Users", headers=bearer(token)).json()
    assert [u["userName"] for u in listed["Resources"]] == [HANAKO]
    page = card_page(h, card)
    assert page.status_code == 410 and "Your contact has changed" in page.text and "佐藤" not in page.text
    assert "03-1234-0000" in page.text  # the company's general channels
    old = h.run(h.service.card, card.card.id)
    assert old is not None and old.revoked_reason == "deprovisioned"
    action, _, before, after = audit(h)[0]
    assert action == "scim.user.delete" and before["status"] == "active" and after["status"] == "departed"
    assert after["scim_deleted"] is True and after["revoked_card_id"] == card.card.id


def test_create_maps_names_readings_email_title_department(harness: Harness, token: str) -> None:
    h = harness
    body = {"schemas": [CORE, ENTERPRISE, PHONETIC], "userName": "jiro@corp.onmicrosoft.com", "externalId": "e-42",
            "name": {"familyName": "鈴木", "givenName": "次郎", "formatted": "鈴木 次郎"}, "displayName": "鈴木 次郎",
            "emails": [{"value": "jiro.private@gmail.com", "type": "home"},
                       {"value": "jiro@example.co.jp", "type": "work", "primary": True}],
            "title": "主任", "active": True, "phoneNumbers": [{"value": "090-1234-5678", "type": "mobile"}],
            ENTERPRISE: {"department": "営業部"}, PHONETIC: {"familyName": "スズキ", "givenName": "ジロウ"}}
    r = h.client.post("/scim/v2/Users", headers=bearer(token), json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == created["meta"]["location"] == \
        f"https://cards.example.co.jp/scim/v2/Users/{created['id']}"
    assert "phoneNumbers" not in created  # a private number is dropped, never stored
    jiro = h.run(h.service.find_employee, "jiro@example.co.jp")
    assert (jiro.family_name, jiro.given_name, jiro.family_kana, jiro.given_kana, jiro.title, jiro.department) == \
        ("鈴木", "次郎", "スズキ", "ジロウ", "主任", "営業部")
    got = h.client.get(f"/scim/v2/Users/{jiro.id}", headers=bearer(token)).json()
    assert got["externalId"] == "e-42" and got["userName"] == "jiro@corp.onmicrosoft.com"
    assert "090-1234-5678" not in json.dumps(got)
    assert not (h.run(h.service._store.read, lambda c: c.execute(
        "SELECT COUNT(*) FROM scim_identities WHERE document LIKE '%090-1234%'").fetchone()[0]))
    action, target, before, after = audit(h)[0]
    assert (action, target, before) == ("scim.user.create", f"employee:{jiro.id}", None)
    assert after["family_kana"] == "スズキ" and after["external_id"] == "e-42"

    # Entra's other PATCH forms: name.familyName by path, title and department without a path
    patch(h, token, jiro.id, {"op": "Replace", "path": "name.familyName", "value": "鈴木田"},
          {"op": "Replace", "value": {"title": "係長", f"{ENTERPRISE}:department": "企画部"}})
    jiro = h.run(h.service.find_employee, jiro.id)
    assert (jiro.family_name, jiro.title, jiro.department) == ("鈴木田", "係長", "企画部")
    _, _, before, after = audit(h)[0]
    assert before == {"family_name": "鈴木", "title": "主任", "department": "営業部"}
    assert after == {"family_name": "鈴木田", "title": "係長", "department": "企画部"}
    # Entra's manager removal names the manager; its work-email change selects the entry by type
    patch(h, token, jiro.id, {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "1"})
    shown = patch(h, token, jiro.id, {"op": "Remove", "path": f"{ENTERPRISE}:manager", "value": [{"value": "1"}]},
                  {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "jiro.s@example.co.jp"})
    assert "manager" not in shown[ENTERPRISE]
    jiro = h.run(h.service.find_employee, jiro.id)
    assert jiro.email == "jiro.s@example.co.jp"
    # a console edit shows in SCIM where the provider had set that field
    h.run(h.service.edit_employee, jiro.id, dataclasses.replace(jiro.profile, title="課長"), actor="admin")
    assert h.client.get(f"/scim/v2/Users/{jiro.id}", headers=bearer(token)).json()["title"] == "課長"


def test_filters_and_paging(harness: Harness, token: str) -> None:
    h = harness
    for n in range(5):
        h.run(h.service.add_employee, EmployeeProfile(email=f"p{n}@example.co.jp", family_name=f"P{n}"), actor="t")

    def listing(**params: Any) -> Any:
        r = h.client.get("/scim/v2/Users", params=params, headers=bearer(token))
        assert r.status_code == 200, r.text
        return r.json()

    page = listing(startIndex=2, count=2)
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [u["userName"] for u in page["Resources"]] == ["p1@example.co.jp", "p2@example.co.jp"]
    assert listing(count=0)["Resources"] == [] and listing(count=0)["totalResults"] == 5
    assert listing(startIndex=9)["Resources"] == []
    assert [u["userName"] for u in listing(filter='userName eq "P3@EXAMPLE.CO.JP"')["Resources"]] == \
        ["p3@example.co.jp"]
    assert listing(filter='userName eq "nobody@example.co.jp"')["totalResults"] == 0
    assert listing(filter='emails.value sw "p4"')["totalResults"] == 1
    only = listing(filter='userName eq "p0@example.co.jp"', attributes="userName")["Resources"][0]
    assert set(only) == {"schemas", "id", "userName"}
    search = h.client.post("/scim/v2/Users/.search", headers=bearer(token),
                           json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                 "filter": 'userName eq "p1@example.co.jp"', "startIndex": 1, "count": 10})
    assert search.status_code == 200 and search.json()["totalResults"] == 1

    for bad in ['userName eq', 'userName xx "a"', '(userName eq "a"', 'userName eq "a" and', '"a"', 'emails[value',
                'userName eq "unterminated']:
        r = h.client.get("/scim/v2/Users", params={"filter": bad}, headers=bearer(token))
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["scimType"] == "invalidFilter" and r.json()["schemas"] == [ERROR], bad
    assert h.client.get("/scim/v2/Users", params={"count": "many"}, headers=bearer(token)).json()["scimType"] == \
        "invalidValue"


def test_duplicate_user_names_are_409_uniqueness(harness: Harness, token: str) -> None:
    h = harness
    h.seed()  # taro, made in the console: SCIM shows him with userName = his email

    def create(user_name: str, email: str) -> Any:
        return h.client.post("/scim/v2/Users", headers=bearer(token), json={
            "schemas": [CORE], "userName": user_name, "emails": [{"value": email, "type": "work"}]})

    for user_name, email in ((TARO.upper(), "other@example.co.jp"), ("someone", TARO)):
        r = create(user_name, email)
        assert r.status_code == 409 and r.json()["scimType"] == "uniqueness", r.text
    first = create("jiro@corp", "jiro@example.co.jp")
    assert first.status_code == 201
    r = create("JIRO@corp", "jiro2@example.co.jp")
    assert (r.status_code, r.json()["scimType"]) == (409, "uniqueness")
    taro = h.run(h.service.find_employee, TARO)
    r = h.client.put(f"/scim/v2/Users/{taro.id}", headers=bearer(token), json={
        "schemas": [CORE], "userName": "jiro@corp", "emails": [{"value": TARO, "type": "work"}]})
    assert (r.status_code, r.json()["scimType"]) == (409, "uniqueness")
    assert len(h.run(h.service.employees)) == 2
    assert [e.status for e in h.run(h.service.scim_state).errors[:2]] == [409, 409]


def test_bad_input_gets_scim_errors_and_changes_nothing(harness: Harness, token: str, settings: Settings) -> None:
    h = harness
    h.seed()
    taro = h.run(h.service.find_employee, TARO)
    users = "/scim/v2/Users"
    one = f"/scim/v2/Users/{taro.id}"
    assert h.client.get(one, headers=bearer(token)).status_code == 200  # the token's first use is noted
    before = tables(settings)
    cases: list[tuple[str, str, Any, int, str | None]] = [
        ("POST", users, b"{not json", 400, "invalidSyntax"),
        ("POST", users, b"[" * 100_000, 400, "invalidSyntax"),
        ("PATCH", one, b"\xff\xfe", 400, "invalidSyntax"),
        ("POST", users, {"schemas": [CORE], "emails": [{"value": "x@example.co.jp"}]}, 400, "invalidValue"),
        ("POST", users, {"schemas": [CORE], "userName": "x"}, 400, "invalidValue"),  # no email
        ("POST", users, {"schemas": [CORE], "userName": "x", "emails": [{"value": "not-an-email"}]}, 400,
         "invalidValue"),
        ("POST", users, {"schemas": [CORE], "userName": "x", "title": "x" * 300,
                         "emails": [{"value": "x@example.co.jp"}]}, 400, "invalidValue"),
        ("PUT", one, {"schemas": [CORE], "userName": "x"}, 400, "invalidValue"),
        ("PATCH", one, {"schemas": [PATCH_OP], "Operations": []}, 400, "invalidValue"),
        ("PATCH", one, {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "userName"}]}, 400,
         "mutability"),
        ("PATCH", one, {"schemas": [PATCH_OP], "Operations": [{"op": "jump", "path": "title", "value": "x"}]}, 400,
         "invalidValue"),
        ("PATCH", one, {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": 'emails[value co "zzz"].type', "value": "home"}]}, 400, "noTarget"),
        ("PATCH", one, {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "emails[", "value": "x"}]}, 400, "invalidPath"),
        ("PATCH", one, {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active",
                                                               "value": "maybe"}]}, 400, "invalidValue"),
        ("PATCH", "/scim/v2/Users/999", {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "title", "value": "x"}]}, 404, None),
        ("GET", "/scim/v2/Users/abc", None, 404, None),
        ("POST", "/scim/v2/Schemas", {}, 405, None),
        ("DELETE", "/scim/v2/ServiceProviderConfig", None, 405, None),
        ("GET", "/scim/v2/Groups", None, 404, None),
        ("GET", "/scim/v2/ResourceTypes/Group", None, 404, None),
        ("POST", "/scim/v2/.search", {}, 501, None),
    ]
    for method, path, body, status, scim_type in cases:
        content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        r = h.client.request(method, path, content=content, headers={**bearer(token),
                                                                      "Content-Type": "application/scim+json"})
        assert r.status_code == status, (method, path, body, r.text)
        assert r.headers["content-type"].startswith("application/scim+json"), (method, path)
        error = r.json()
        assert error["schemas"] == [ERROR] and error["status"] == str(status) and error["detail"], error
        assert error.get("scimType") == scim_type, (method, path, body, error)
    after = tables(settings)
    assert after.pop("scim_errors") != before.pop("scim_errors")  # each error noted for the settings page
    assert after == before, "no employee, card, identity or audit row was written"


TABLES = ("employees", "cards", "scim_identities", "audit", "sessions", "users", "scim_tokens", "scim_errors")


def tables(settings: Settings) -> dict[str, list[Any]]:
    conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    finally:
        conn.close()


def test_a_wrong_missing_or_revoked_token_is_401_and_writes_nothing(
        harness: Harness, token: str, settings: Settings) -> None:
    h = harness
    h.seed()
    taro = h.run(h.service.find_employee, TARO)
    old = h.run(h.service.create_scim_token, actor="test")
    h.run(h.service.revoke_scim_tokens, 2, actor="test")
    make_admin(h)
    assert login(h.client, ADMIN_EMAIL).status_code == 303  # a signed-in admin's cookie is no SCIM credential
    before = tables(settings)
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer nope"}, bearer(old),
                    bearer(token + "x"), {"Authorization": f"Basic {token}"}, {"Authorization": token}):
        for method, path in (("GET", "/scim/v2/Users"), ("POST", "/scim/v2/Users"),
                             ("PATCH", f"/scim/v2/Users/{taro.id}"), ("DELETE", f"/scim/v2/Users/{taro.id}"),
                             ("GET", "/scim/v2/ServiceProviderConfig"), ("GET", "/scim/v2/nothing")):
            r = h.client.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.headers["content-type"].startswith("application/scim+json")
            assert r.json()["schemas"] == [ERROR] and r.json()["status"] == "401"
            assert r.headers["www-authenticate"].startswith("Bearer")
    assert tables(settings) == before, "nothing written: no change, no error note, no last-use time"
    assert h.client.get(f"/scim/v2/Users/{taro.id}", headers=bearer(token)).status_code == 200


def test_cli_token_create_and_revoke(harness: Harness, settings: Settings, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    monkeypatch.setenv("CONTACTCARD_DB", str(settings.db_path))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(settings.secret_file))
    cli = Cli(capsys)
    created = cli.json("scim", "token", "create")
    assert list(created) == ["token"] and created["token"].startswith("scim_") and len(created["token"]) > 40
    text = cli.ok("scim", "token", "create").splitlines()
    assert text[0].startswith("scim_") and "not shown again" in text[1] and "/scim/v2" in text[1]
    for each in (created["token"], text[0]):
        assert h.client.get("/scim/v2/Users", headers=bearer(each)).status_code == 200
    stored = tables(settings)["scim_tokens"]
    assert created["token"] not in repr(stored) and all(len(row[1]) == 32 for row in stored)  # SHA-256 only
    listed = cli.json("scim", "token", "list")
    assert [(t["id"], t["revoked_at"], t["created_by"]) for t in listed] == [(2, None, "cli"), (1, None, "cli")]
    assert listed[1]["last_used_at"] is not None
    assert cli.json("scim", "token", "revoke", "--id", "1") == {"revoked": [1]}
    assert h.client.get("/scim/v2/Users", headers=bearer(created["token"])).status_code == 401
    assert h.client.get("/scim/v2/Users", headers=bearer(text[0])).status_code == 200
    assert cli.refused("scim", "token", "revoke", "--id", "1") == "contactcard: error: no live SCIM token 1"
    assert "revoked SCIM token 2" in cli.ok("scim", "token", "revoke")
    assert h.client.get("/scim/v2/Users", headers=bearer(text[0])).status_code == 401
    assert [(a, t) for a, t, *_ in audit(h, "cli")][:4] == [
        ("scim.token.revoke", "scim_token:2"), ("scim.token.revoke", "scim_token:1"),
        ("scim.token.create", "scim_token:2"), ("scim.token.create", "scim_token:1")]


def test_the_settings_page_shows_the_scim_state(harness: Harness, token: str, admin_client: TestClient) -> None:
    h = harness
    english = {"Accept-Language": "en"}
    page = admin_client.get("/admin/settings", headers=english).text
    assert "Provisioning (SCIM)" in page and "https://cards.example.co.jp/scim/v2" in page
    assert "token 1, created 2026-11-28 10:00" in page  # the company's time zone (FakeClock: 01:00 UTC)
    assert "Last SCIM request</dt>\n    <dd>never" in page and "No errors." in page
    h.client.get("/scim/v2/Users", params={"filter": "title eq"}, headers=bearer(token))
    page = admin_client.get("/admin/settings", headers=english).text
    assert "Last SCIM request</dt>\n    <dd>2026-11-28 10:00" in page
    assert "GET /scim/v2/Users" in page and "invalidFilter" in page and "No errors." not in page
    h.run(h.service.revoke_scim_tokens, actor="test")
    assert "none: SCIM is off" in admin_client.get("/admin/settings", headers=english).text


def test_the_audit_log_shows_each_scim_change_with_before_and_after(
        harness: Harness, token: str, admin_client: TestClient) -> None:
    h = harness
    h.seed()
    taro = h.run(h.service.find_employee, TARO)
    patch(h, token, taro.id, {"op": "replace", "path": "title", "value": "部長"})
    page = admin_client.get("/admin/audit", params={"actor": "scim"}, headers={"Accept-Language": "en"}).text
    assert "scim.user.update" in page and f"employee:{taro.id}" in page
    assert "{&#34;title&#34;: &#34;課長&#34;}" in page and "{&#34;title&#34;: &#34;部長&#34;}" in page


def test_an_admin_names_the_successor_after_scim_deactivated_without_a_manager(
        harness: Harness, token: str, admin_client: TestClient) -> None:
    h = harness
    card, taro, hanako = two_employees(h)
    patch(h, token, taro, {"op": "replace", "path": "active", "value": False})
    assert "佐藤 花子" not in card_page(h, card).text  # no manager named: the company
    page = f"/admin/employees/{taro}"
    assert "Save the successor" in admin_client.get(page, headers={"Accept-Language": "en"}).text
    r = post_form(admin_client, page, f"/admin/employees/{taro}/successor", {"successor": str(hanako)})
    assert r.status_code == 303
    assert "佐藤 花子" in card_page(h, card).text
    patch(h, token, taro, {"op": "replace", "path": "title", "value": "顧問"})  # a later change keeps the choice
    assert "佐藤 花子" in card_page(h, card).text
    assert audit(h, ADMIN_EMAIL)[0][:2] == ("employee.successor", f"employee:{taro}")
    assert post_form(admin_client, page, f"/admin/employees/{taro}/successor",
                     {"successor": str(taro)}).status_code == 400  # not themselves
    h.run(h.service.add_employee, EmployeeProfile(email="jiro@example.co.jp", family_name="鈴木"), actor="test")
    jiro = h.run(h.service.find_employee, "jiro@example.co.jp")
    patch(h, token, taro, {"op": "add", "path": f"{ENTERPRISE}:manager", "value": {"value": str(jiro.id)}})
    assert "鈴木" in card_page(h, card).text  # the provider named a new manager: they take over


def test_a_scim_departure_sends_the_employee_departed_webhook(
        settings: Settings, clock: FakeClock) -> None:
    """As a departure in the console does: a CRM hears of it, with the successor and the revoked card."""
    hooked = dataclasses.replace(settings, webhook_allow_private=True, webhook_worker=False)
    with TestClient(create_app(hooked, clock=clock), base_url="http://127.0.0.1", follow_redirects=False) as client:
        h = Harness(client)
        scim_token = h.run(h.service.create_scim_token, actor="test")
        card, taro, hanako = two_employees(h)
        added = h.run(h.ctx.webhooks.add_endpoint, "http://127.0.0.1:9/hook", ["employee.departed"], actor="test")
        jiro = h.run(h.service.add_employee, EmployeeProfile(email="jiro@example.co.jp", family_name="鈴木"),
                     actor="test")
        patch(h, scim_token, taro, {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": str(hanako)},
              {"op": "Replace", "path": "active", "value": "False"})
        assert h.client.delete(f"/scim/v2/Users/{jiro.id}", headers=bearer(scim_token)).status_code == 204
        patch(h, scim_token, taro, {"op": "Replace", "path": "title", "value": "顧問"})  # no second departure
        assert [e.type for e in h.run(h.ctx.webhooks.log, added.endpoint.id)] == ["employee.departed"] * 2
        bodies = h.run(h.service._store.read, lambda c: [json.loads(r[0]) for r in c.execute(
            "SELECT body FROM webhook_messages ORDER BY id")])
        assert [b["data"]["employee"]["id"] for b in bodies] == [taro, jiro.id]
        assert bodies[0]["data"]["successor"]["id"] == hanako and bodies[0]["data"]["revoked_card_id"] == card.card.id
        assert bodies[1]["data"]["successor"] is None and bodies[1]["data"]["revoked_card_id"] is None
