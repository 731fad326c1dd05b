"""Sign-in, sessions, throttling, CSRF, one-time links and the audit trail, through the real app and SQLite."""

from __future__ import annotations

import re
import sqlite3
import threading

import pytest

from contactcard import auth
from contactcard.models import ValidationError

from .accounts_kit import (
    ADMIN_EMAIL,
    PASSWORD,
    accounts,
    csrf_of,
    get,
    keep_cookies,
    login,
    make_admin,
    make_employee,
    post_form,
)
from .conftest import FakeClock, Harness
from .route_walk import concrete, flatten

WRONG = "not the password at all"


def audit_actions(h: Harness) -> list[tuple[str, str]]:
    rows = h.run(h.service._store.audit_events, limit=1000)
    return [(r.actor, r.action) for r in reversed(rows)]


# --- passwords --------------------------------------------------------------------------------------


def test_password_hash_format_verify_and_limits() -> None:
    stored = auth.hash_password(PASSWORD)
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1") and salt and key
    assert auth.hash_password(PASSWORD) != stored, "a fresh salt every time"
    assert auth.verify_password(PASSWORD, stored)
    assert not auth.verify_password(PASSWORD + "x", stored)
    assert not auth.verify_password(PASSWORD, None)
    assert not auth.needs_rehash(stored)
    cheaper = auth.hash_password(PASSWORD, n=2**10)
    assert auth.verify_password(PASSWORD, cheaper) and auth.needs_rehash(cheaper)
    for bad in ("", "scrypt$", "scrypt$99999999999$8$1$AA$AA", "md5$1$1$1$AA$AA", stored.replace("$8$", "$x$")):
        assert not auth.verify_password(PASSWORD, bad)
    for short_or_long in ("x" * 9, "x" * 201):
        with pytest.raises(ValidationError):
            auth.hash_password(short_or_long)


# --- sign-in ----------------------------------------------------------------------------------------


def test_sign_in_sets_a_hardened_cookie_and_lands_on_the_right_page(harness: Harness) -> None:
    admin = make_admin(harness)
    r = login(harness.client, admin.email, admin.password)
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    # https base URL: the __Host- prefix, so only this exact host over https can set or overwrite it
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("__Host-cc_session="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=lax", "secure", "path=/"} <= flags
    assert not any(f.startswith("domain") for f in flags)
    assert harness.run(harness.service._store.count_sessions) == 1
    # The signed-out form's double-submit cookie is hardened too.
    pre = harness.client.get("/login?x=1")
    assert pre.status_code == 303, "a signed-in visitor goes straight on"
    harness.client.cookies.clear()
    page = harness.client.get("/login")
    csrf_cookie = next(c for c in page.headers.get_list("set-cookie") if c.startswith("__Host-cc_csrf="))
    assert "HttpOnly" in csrf_cookie and "SameSite=Lax" in csrf_cookie and "Secure" in csrf_cookie
    assert "Path=/" in csrf_cookie and "domain" not in csrf_cookie.lower()
    assert page.headers["cache-control"] == "no-store"


def test_cookie_is_not_secure_on_a_plain_http_base_url(tmp_path: object, clock: FakeClock) -> None:
    from pathlib import Path

    from starlette.testclient import TestClient

    from contactcard.app import create_app
    from contactcard.config import Settings

    assert isinstance(tmp_path, Path)
    settings = Settings(db_path=tmp_path / "x.sqlite3", base_url="http://127.0.0.1:8000",
                        secret_file=tmp_path / "s.key")
    with TestClient(create_app(settings, clock=clock), base_url="http://127.0.0.1", follow_redirects=False) as c:
        h = Harness(c)
        make_admin(h)
        r = login(c, ADMIN_EMAIL)
        cookie = next(x for x in r.headers.get_list("set-cookie") if x.startswith("cc_session="))
        assert "secure" not in cookie.lower() and "httponly" in cookie.lower()


def test_wrong_email_and_wrong_password_get_the_same_answer(harness: Harness) -> None:
    make_admin(harness)
    wrong_password = login(harness.client, ADMIN_EMAIL, WRONG)
    wrong_email = login(harness.client, "nobody@example.co.jp", PASSWORD)
    not_an_email = login(harness.client, "<script>", PASSWORD)
    for r in (wrong_password, wrong_email, not_an_email):
        assert r.status_code == 400
        assert "cc_session" not in r.headers.get("set-cookie", "")
    strip = [re.sub(r'nonce="[^"]*"', "", r.text.replace(csrf_of(r.text), "")) for r in (wrong_password, wrong_email)]
    assert "メールアドレスまたはパスワードが正しくありません" in strip[0]
    assert strip[0].replace(ADMIN_EMAIL, "") == strip[1].replace("nobody@example.co.jp", "")
    assert "&lt;script&gt;" in not_an_email.text
    assert harness.run(harness.service._store.count_sessions) == 0
    admin_id = harness.run(harness.service._store.user_by_email, ADMIN_EMAIL).user.id  # type: ignore[union-attr]
    rows = list(reversed(harness.run(harness.service._store.audit_events, limit=3)))
    assert [(r.actor, r.action, r.target) for r in rows] == [
        ("anonymous", "sign_in.failed", f"user:{admin_id}"), ("anonymous", "sign_in.failed", ""),
        ("anonymous", "sign_in.failed", "")], "typed names are never actors"
    assert not any("nobody" in (r.after or "") or "script" in (r.after or "") for r in rows)


def test_after_the_next_parameter_only_local_paths(harness: Harness) -> None:
    make_admin(harness)
    for target, expected in (("/me", "/me"), ("//evil.example/x", "/admin"), ("https://evil.example", "/admin"),
                             ("/\\evil.example", "/admin")):
        harness.client.cookies.clear()
        page = get(harness.client, "/login?next=" + target.replace("/", "%2F"))
        r = harness.client.post("/login", data={"csrf": csrf_of(page.text), "email": ADMIN_EMAIL,
                                                "password": PASSWORD, "next": target})
        assert r.status_code == 303 and r.headers["location"] == expected, target


def test_throttling_per_account_then_release_with_the_clock(harness: Harness, clock: FakeClock) -> None:
    make_admin(harness)
    for _ in range(5):
        assert login(harness.client, ADMIN_EMAIL, WRONG).status_code == 400
    refused = login(harness.client, ADMIN_EMAIL, PASSWORD)
    assert refused.status_code == 429, "even the right password is refused while throttled"
    assert int(refused.headers["retry-after"]) == 30
    assert "しばらく待って" in refused.text
    clock.advance(seconds=31)
    assert login(harness.client, ADMIN_EMAIL, WRONG).status_code == 400
    again = login(harness.client, ADMIN_EMAIL, PASSWORD)
    assert again.status_code == 429 and int(again.headers["retry-after"]) == 60, "the delay doubles"
    clock.advance(seconds=61)
    assert login(harness.client, ADMIN_EMAIL, PASSWORD).status_code == 303
    actions = [a for _, a in audit_actions(harness)]
    assert actions.count("sign_in.failed") == 6 and actions.count("sign_in.throttled") == 2
    assert actions[-1] == "sign_in"


def test_throttling_per_client_across_many_addresses(harness: Harness, clock: FakeClock) -> None:
    make_admin(harness)
    for i in range(20):
        assert login(harness.client, f"guess{i}@example.co.jp", WRONG).status_code == 400
    assert login(harness.client, ADMIN_EMAIL, PASSWORD).status_code == 429, "same client, another account"
    assert harness.run(accounts(harness).sign_in, ADMIN_EMAIL, PASSWORD, "10.0.0.9").user.email == ADMIN_EMAIL, \
        "another client is not held back"
    clock.advance(minutes=16)
    assert login(harness.client, ADMIN_EMAIL, PASSWORD).status_code == 303, "the window has passed"


def test_a_stranger_never_locks_the_owner_out(harness: Harness, clock: FakeClock) -> None:
    """Finding 13: one client failing on the admin's account holds back that client only."""
    from contactcard.accounts import SignInRefused

    make_admin(harness)
    acc = accounts(harness)
    guesses = 0
    for tick in range(180):  # a stranger tries every 10 s for half an hour
        with pytest.raises(SignInRefused) as err:
            harness.run(acc.sign_in, ADMIN_EMAIL, WRONG, "198.51.100.66")
        guesses += err.value.retry_after is None
        if tick % 30 == 0:  # meanwhile the admin signs in every 5 minutes, from the office
            assert login(harness.client, ADMIN_EMAIL, PASSWORD).status_code == 303
        clock.advance(seconds=10)
    assert guesses <= 20, "the stranger is held back: 5 guesses, then one per doubling delay (of 180 tries)"


@pytest.mark.parametrize("email", [ADMIN_EMAIL, "ghost@example.co.jp"])
def test_an_account_guessed_at_from_many_clients_slows_but_never_locks(harness: Harness, email: str) -> None:
    """Many addresses guessing one account: each gets one try per delay, and a client that never failed gets in.

    Known and unknown accounts behave alike, so the throttle reveals nothing about which accounts exist.
    """
    from contactcard.accounts import SignInRefused

    make_admin(harness)
    acc = accounts(harness)
    for i in range(20):
        with pytest.raises(SignInRefused) as err:
            harness.run(acc.sign_in, email, WRONG, f"203.0.113.{i}")
        assert err.value.retry_after is None, "one failure per client is not throttled"
    with pytest.raises(SignInRefused) as err:
        harness.run(acc.sign_in, email, PASSWORD, "203.0.113.0")
    assert err.value.retry_after == 30, "under attack, a client that failed once waits"
    if email == ADMIN_EMAIL:
        assert harness.run(acc.sign_in, email, PASSWORD, "192.0.2.7").user.email == ADMIN_EMAIL


async def _fail_sign_in(h: Harness, email: str, client_ip: str) -> None:
    from contactcard.accounts import SignInRefused

    with pytest.raises(SignInRefused):
        await accounts(h).sign_in(email, WRONG, client_ip)


def test_a_cli_reset_link_signs_in_even_while_throttled(harness: Harness, settings: object,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """An admin must always have a way in: held back on every key, a `contactcard user reset` link still works."""
    from contactcard import cli
    from contactcard.config import Settings

    assert isinstance(settings, Settings)
    make_admin(harness)
    for i in range(20):  # the account is under attack from many clients...
        login(harness.client, ADMIN_EMAIL, WRONG)  # ... and this client is held back on it and overall
        harness.run(_fail_sign_in, harness, ADMIN_EMAIL, f"203.0.113.{i}")
    assert login(harness.client, ADMIN_EMAIL, PASSWORD).status_code == 429
    monkeypatch.setenv("CONTACTCARD_DB", str(settings.db_path))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(settings.secret_file))
    monkeypatch.setenv("CONTACTCARD_BASE_URL", "https://cards.example.co.jp")
    capsys.readouterr()
    assert cli.main(["user", "reset", "--email", ADMIN_EMAIL]) == 0
    url = capsys.readouterr().out.splitlines()[0]
    path = url.removeprefix("https://cards.example.co.jp")
    page = get(harness.client, path)
    assert page.status_code == 200
    r = harness.client.post(path, data={"csrf": csrf_of(page.text), "password": "a brand new password",
                                        "password2": "a brand new password"})
    keep_cookies(harness.client, r)
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    assert harness.client.get("/admin").status_code == 200, "signed in"


def test_an_anonymous_flood_adds_a_few_audit_rows_and_no_actors(admin_client: object, harness: Harness) -> None:
    """Finding 8: 600 attempts with made-up addresses add a bounded number of rows, all by `anonymous`."""
    store = harness.service._store
    actors_before = set(harness.run(store.audit_actors))
    rows_before = harness.run(store.count_audit_events)
    options_before = harness.client.get("/admin/audit").text.count("<option")
    session = harness.client.cookies["__Host-cc_session"]
    harness.client.cookies.clear()
    csrf = csrf_of(get(harness.client, "/login").text)
    statuses = [harness.client.post("/login", data={"csrf": csrf, "email": f"ceo.{i}@example.co.jp",
                                                    "password": WRONG}).status_code for i in range(600)]
    assert statuses.count(400) == 20 and statuses.count(429) == 580
    harness.client.cookies.clear()
    harness.client.cookies.set("__Host-cc_session", session)
    added = harness.run(store.count_audit_events) - rows_before
    assert added <= 21, f"{added} audit rows for one client's flood"
    assert set(harness.run(store.audit_actors)) - actors_before <= {"anonymous"}
    assert harness.client.get("/admin/audit").text.count("<option") <= options_before + 1


def test_one_host_rotating_through_its_ipv6_addresses_is_one_client(harness: Harness) -> None:
    """Finding 8 (and the guessing throttle), a variant the review did not try: every home line gets at least a
    /64 of IPv6, so one host can send each attempt from a new address. Counted per address, each attempt was a
    new client: one undeletable audit row per attempt (300 of 300), and one password guess per address on an
    account under attack, at the speed of scrypt. The host's /64 is the client; its neighbour is not held back."""
    from contactcard.accounts import SignInRefused

    assert auth.client_key("2001:db8:1:2::1") == auth.client_key("2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert auth.client_key("2001:db8:1:2::1") != auth.client_key("2001:db8:1:3::1")
    assert auth.client_key("::ffff:198.51.100.7") == auth.client_key("198.51.100.7")
    assert auth.client_key("198.51.100.7") != auth.client_key("198.51.100.8")
    make_admin(harness)
    acc = accounts(harness)
    store = harness.service._store
    rows_before = harness.run(store.count_audit_events)
    checked = 0
    for i in range(120):
        email = ADMIN_EMAIL if i % 2 else f"ceo.{i}@example.co.jp"
        with pytest.raises(SignInRefused) as err:
            harness.run(acc.sign_in, email, WRONG, f"2001:db8:1:2:{i:x}:{i:x}::1")
        checked += err.value.retry_after is None
    added = harness.run(store.count_audit_events) - rows_before
    assert checked <= 20, f"{checked} of 120 attempts had their password checked"
    # the client's 20 failures, and one row for each throttle holding it back (the client's, its pair on the admin)
    assert added <= 22, f"{added} audit rows for one host's flood"
    assert harness.run(acc.sign_in, ADMIN_EMAIL, PASSWORD, "2001:db8:1:3::1").user.email == ADMIN_EMAIL


def test_a_clock_step_back_never_lengthens_a_throttle(harness: Harness, clock: FakeClock) -> None:
    """Finding 17: throttled for 30 s, then the clock is set back an hour: still at most 30 s, not 3630."""
    make_admin(harness)
    for _ in range(5):
        assert login(harness.client, ADMIN_EMAIL, WRONG).status_code == 400
    assert int(login(harness.client, ADMIN_EMAIL, PASSWORD).headers["retry-after"]) == 30
    clock.advance(hours=-1)
    stepped = login(harness.client, ADMIN_EMAIL, PASSWORD)
    assert stepped.status_code == 429 and int(stepped.headers["retry-after"]) <= 30
    clock.advance(seconds=31)
    assert login(harness.client, ADMIN_EMAIL, PASSWORD).status_code == 303, "the earned delay, not the step"


def test_scrypt_runs_off_the_event_loop_so_scans_go_on_during_a_sign_in(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a sign-in is checking its password (held open here), a customer's scan is answered."""
    issued = harness.seed()
    make_admin(harness)

    async def thread_id() -> int:
        return threading.get_ident()

    loop_thread = harness.run(thread_id)
    entered, release = threading.Event(), threading.Event()
    verified_in: list[int] = []
    released: list[bool] = []
    real_verify = auth.verify_password

    def verify_held_open(password: str, stored: str | None) -> bool:
        verified_in.append(threading.get_ident())
        entered.set()
        # On the event loop this wait would stall the scan below, which then could not release it: it times out.
        released.append(release.wait(5))
        return real_verify(password, stored)

    monkeypatch.setattr(auth, "verify_password", verify_held_open)
    csrf = csrf_of(get(harness.client, "/login").text)
    answers: list[int] = []
    signing_in = threading.Thread(target=lambda: answers.append(harness.client.post(
        "/login", data={"csrf": csrf, "email": ADMIN_EMAIL, "password": PASSWORD}).status_code))
    signing_in.start()
    assert entered.wait(5), "the sign-in never checked the password"
    scan = harness.client.get(harness.path(issued))
    release.set()
    signing_in.join(10)
    assert scan.status_code == 200
    assert released == [True], "the scan was answered only after the password check gave up"
    assert answers == [303] and verified_in[0] != loop_thread

    hashed_in: list[int] = []
    real_hash = auth.hash_password

    def hash_recorded(password: str) -> str:
        hashed_in.append(threading.get_ident())
        return real_hash(password)

    monkeypatch.setattr(auth, "hash_password", hash_recorded)
    link = harness.run(accounts(harness).reset_link, make_admin(harness, "second@example.co.jp").user.id, actor="cli")
    harness.run(accounts(harness).accept_link, link.token, "another long password")
    assert hashed_in and loop_thread not in hashed_in


# --- sessions ---------------------------------------------------------------------------------------


def test_admin_session_idle_timeout(harness: Harness, clock: FakeClock) -> None:
    make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    clock.advance(minutes=29)
    assert harness.client.get("/me").status_code == 200, "activity keeps it alive"
    clock.advance(minutes=29)
    assert harness.client.get("/me").status_code == 200
    clock.advance(minutes=31)
    r = harness.client.get("/me")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/me"
    assert harness.run(harness.service._store.count_sessions) == 0, "the expired row is deleted"


def test_a_clock_step_back_never_lengthens_a_sessions_idle_limit(harness: Harness, clock: FakeClock) -> None:
    """Finding 17's variant for sessions: after the clock stepped back, a last request "in the future" was never
    written again until the clock caught up, so an admin session stayed alive for its 30 idle minutes plus the
    step. A request then counts as made now."""
    make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    clock.advance(minutes=20)
    assert harness.client.get("/me").status_code == 200
    clock.advance(minutes=-15)  # the clock steps back
    assert harness.client.get("/me").status_code == 200
    clock.advance(minutes=31)
    assert harness.client.get("/me").status_code == 303, "31 minutes idle: over, whatever the clock said before"
    assert harness.run(harness.service._store.count_sessions) == 0


def test_employee_session_absolute_timeout(harness: Harness, clock: FakeClock) -> None:
    harness.seed()
    taro = make_employee(harness)
    login(harness.client, taro.email)
    for _ in range(23):  # active every 7 hours for 6 days 17 hours
        clock.advance(hours=7)
        assert harness.client.get("/me").status_code == 200
    clock.advance(hours=7)  # 7 days 0 hours since sign-in
    assert harness.client.get("/me").status_code == 303


def test_sign_out_deletes_the_session_row_and_the_cookie_stops_working(harness: Harness) -> None:
    make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    token = harness.client.cookies["__Host-cc_session"]
    assert harness.run(harness.service._store.count_sessions) == 1
    r = post_form(harness.client, "/me", "/logout", {})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert r.headers["clear-site-data"] == '"cache", "storage"', "the phone's offline copy goes too (finding 10)"
    assert harness.run(harness.service._store.count_sessions) == 0
    harness.client.cookies.set("__Host-cc_session", token)
    assert harness.client.get("/me").status_code == 303
    assert audit_actions(harness)[-1] == (ADMIN_EMAIL, "sign_out")


def test_new_password_ends_old_sessions(harness: Harness) -> None:
    admin = make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    link = harness.run(accounts(harness).reset_link, admin.user.id, actor="cli")
    harness.run(accounts(harness).accept_link, link.token, "another long password")
    assert harness.client.get("/me").status_code == 303
    assert login(harness.client, ADMIN_EMAIL, "another long password").status_code == 303


# --- CSRF -------------------------------------------------------------------------------------------


def test_missing_or_wrong_csrf_is_refused_and_nothing_is_written(employee_client: object, harness: Harness) -> None:
    before = harness.run(harness.service.current_card, "taro@example.co.jp")
    audit_before = len(audit_actions(harness))
    for data in ({}, {"csrf": ""}, {"csrf": "x" * 43}):
        assert harness.client.post("/me/rotate", data=data).status_code == 403
        assert harness.client.post("/logout", data=data).status_code == 403
    assert harness.run(harness.service.current_card, "taro@example.co.jp") == before
    assert harness.run(harness.service._store.count_sessions) == 1
    assert len(audit_actions(harness)) == audit_before


def test_signed_out_forms_need_the_double_submit_cookie(harness: Harness) -> None:
    make_admin(harness)
    page = get(harness.client, "/login")
    token = csrf_of(page.text)
    assert harness.client.post("/login", data={"email": ADMIN_EMAIL, "password": PASSWORD}).status_code == 403
    harness.client.cookies.delete("__Host-cc_csrf")
    r = harness.client.post("/login", data={"csrf": token, "email": ADMIN_EMAIL, "password": PASSWORD})
    assert r.status_code == 403, "a token without its cookie (a cross-site post) is refused"
    harness.client.cookies.set("__Host-cc_csrf", "attacker-chosen")
    r = harness.client.post("/login", data={"csrf": token, "email": ADMIN_EMAIL, "password": PASSWORD})
    assert r.status_code == 403
    assert harness.run(harness.service._store.count_sessions) == 0


def test_a_sessions_csrf_token_is_not_stored(harness: Harness, settings: object) -> None:
    """Finding 20: the CSRF token is derived from the session id; no copy of it is in the database files."""
    from contactcard.config import Settings

    assert isinstance(settings, Settings)
    make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    token = csrf_of(harness.client.get("/me").text)
    files = [p for p in settings.db_path.parent.iterdir() if p.name.startswith(settings.db_path.name)]
    assert files and not any(token.encode() in p.read_bytes() for p in files)
    with sqlite3.connect(settings.db_path) as db:
        assert "csrf_token" not in [row[1] for row in db.execute("PRAGMA table_info(sessions)")]
    assert harness.client.post("/logout", data={"csrf": token}).status_code == 303, "the token works"


def test_the_csrf_column_migration_keeps_sessions(tmp_path: object) -> None:
    import asyncio
    from pathlib import Path

    from contactcard.schema import LATEST
    from contactcard.store import Store

    assert isinstance(tmp_path, Path)
    path = tmp_path / "old.sqlite3"

    async def make_old() -> None:
        store = await Store.open(path, migrate_to=6)
        await store.close()

    asyncio.run(make_old())
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO users (email, role, created_at) "
                   "VALUES ('a@x.jp', 'admin', '2026-01-01T00:00:00.000000Z')")
        db.execute("INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at) "
                   "VALUES (?, 1, 'in-clear', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
                   (auth.token_hash("sid"),))

    async def upgrade() -> None:
        store = await Store.open(path)
        assert await store.schema_version() == LATEST
        found = await store.session(auth.token_hash("sid"))
        assert found is not None and found.user_id == 1
        await store.close()

    asyncio.run(upgrade())
    with sqlite3.connect(path) as db:
        assert "csrf_token" not in [row[1] for row in db.execute("PRAGMA table_info(sessions)")]
        db.execute("VACUUM")
    assert b"in-clear" not in path.read_bytes()


def test_sessions_from_before_single_sign_out_upgrade_and_sign_out_here_only(tmp_path: object) -> None:
    """Migration 15 adds the provider's issuer and sealed ID token to sessions: a session opened before it keeps
    working, has neither (so its sign-out goes to /login as before), and a new one can hold them."""
    import asyncio
    from datetime import UTC, datetime
    from pathlib import Path

    from contactcard.accounts import Accounts
    from contactcard.schema import LATEST
    from contactcard.store import Store

    assert isinstance(tmp_path, Path)
    path = tmp_path / "old.sqlite3"
    now = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)

    async def make_old() -> None:
        store = await Store.open(path, migrate_to=14)
        await store.close()

    asyncio.run(make_old())
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO users (email, role, created_at) "
                   "VALUES ('a@x.jp', 'admin', '2026-11-28T00:00:00.000000Z')")
        db.execute("INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at) "
                   "VALUES (?, 1, '2026-11-28T00:59:00.000000Z', '2026-11-28T00:59:00.000000Z')",
                   (auth.token_hash("sid"),))

    async def upgrade() -> None:
        store = await Store.open(path)
        try:
            assert await store.schema_version() == LATEST >= 15
            accounts = Accounts(store, lambda: now)
            active = await accounts.session("sid")
            assert active is not None and active.user.email == "a@x.jp"
            assert await accounts.sign_out("sid") is None  # nothing to sign out of at a provider
            assert await store.count_sessions() == 0
            async with store.transaction():
                await store.add_session(auth.token_hash("sso"), 1, now, oidc_issuer="https://id.example.jp",
                                        id_token_sealed=auth.seal("sso", "header.payload.signature"))
            ended = await accounts.sign_out("sso")
            assert ended is not None and (ended.issuer, ended.id_token) == ("https://id.example.jp",
                                                                            "header.payload.signature")
            assert "signature" not in repr(ended)
        finally:
            await store.close()

    asyncio.run(upgrade())


def test_a_session_token_from_before_sign_in_is_not_reused(harness: Harness) -> None:
    make_admin(harness)
    page = get(harness.client, "/login")
    pre = csrf_of(page.text)
    login(harness.client, ADMIN_EMAIL)
    assert csrf_of(harness.client.get("/me").text) != pre
    assert harness.client.post("/logout", data={"csrf": pre}).status_code == 403


# --- one-time links ---------------------------------------------------------------------------------


def test_invitation_sets_a_password_once_and_signs_in(harness: Harness) -> None:
    harness.seed()
    employee = harness.run(harness.service.find_employee, "taro@example.co.jp")
    link = harness.run(accounts(harness).invite_employee, employee.id, actor="cli")
    assert link.url.startswith("https://cards.example.co.jp/invite/") and link.purpose == "invite"
    path = f"/invite/{link.token}"
    page = get(harness.client, path)
    assert page.status_code == 200 and "taro@example.co.jp" in page.text
    mismatch = harness.client.post(path, data={"csrf": csrf_of(page.text), "password": PASSWORD,
                                               "password2": PASSWORD + "!"})
    assert mismatch.status_code == 400 and "一致しません" in mismatch.text
    short = harness.client.post(path, data={"csrf": csrf_of(page.text), "password": "short", "password2": "short"})
    assert short.status_code == 400
    ok = harness.client.post(path, data={"csrf": csrf_of(page.text), "password": PASSWORD, "password2": PASSWORD})
    keep_cookies(harness.client, ok)
    assert ok.status_code == 303 and ok.headers["location"] == "/me"
    assert harness.client.get("/me").status_code == 200
    harness.client.cookies.clear()
    replay_page = get(harness.client, path)
    assert replay_page.status_code == 410
    assert "<form" not in replay_page.text
    replay = harness.client.post(path, data={"csrf": csrf_of(get(harness.client, "/login").text),
                                             "password": "hijacked password",
                                             "password2": "hijacked password"})
    assert replay.status_code == 410
    assert login(harness.client, "taro@example.co.jp", "hijacked password").status_code == 400
    assert login(harness.client, "taro@example.co.jp", PASSWORD).status_code == 303


def test_invitation_expires_after_72_hours_and_a_new_one_retires_the_old(harness: Harness, clock: FakeClock) -> None:
    harness.seed()
    employee = harness.run(harness.service.find_employee, "taro@example.co.jp")
    first = harness.run(accounts(harness).invite_employee, employee.id, actor="cli")
    clock.advance(hours=71, minutes=59)
    assert get(harness.client, f"/invite/{first.token}").status_code == 200
    clock.advance(minutes=1)
    expired = get(harness.client, f"/invite/{first.token}")
    assert expired.status_code == 410 and "使用できません" in expired.text
    second = harness.run(accounts(harness).invite_employee, employee.id, actor="cli")
    third = harness.run(accounts(harness).invite_employee, employee.id, actor="cli")
    assert get(harness.client, f"/invite/{second.token}").status_code == 410, "retired by the third"
    assert get(harness.client, f"/invite/{third.token}").status_code == 200
    for junk in ("x", "A" * 43, "A" * 500, "%00"):
        assert get(harness.client, f"/invite/{junk}").status_code in (404, 410)


def test_departed_employee_cannot_sign_in_and_loses_the_session(harness: Harness) -> None:
    harness.seed()
    taro = make_employee(harness)
    login(harness.client, taro.email)
    harness.run(harness.service.depart, "taro@example.co.jp", actor="cli")
    assert harness.client.get("/me").status_code == 303
    assert login(harness.client, taro.email).status_code == 400


# --- authorisation of every admin route ----------------------------------------------------------


def admin_routes(harness: Harness) -> list[tuple[str, str]]:
    routes = flatten(list(harness.client.app.routes))  # type: ignore[attr-defined]
    return sorted((method, concrete(path)) for path, methods in routes if path.startswith("/admin")
                  for method in methods)


def test_every_admin_route_turns_away_visitors_and_employees(harness: Harness) -> None:
    found = admin_routes(harness)
    if not found:
        pytest.skip("no /admin routes are mounted yet")
    harness.seed()
    taro = make_employee(harness)
    writes_before = len(audit_actions(harness))
    for method, path in found:
        r = harness.client.request(method, path)
        if method == "GET":
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), (method, path)
        else:
            assert r.status_code in (303, 403), (method, path, r.status_code)
            if r.status_code == 303:
                assert r.headers["location"].startswith("/login"), (method, path)
    login(harness.client, taro.email)
    csrf = csrf_of(harness.client.get("/me").text)
    for method, path in found:
        data = {"csrf": csrf} if method != "GET" else None
        r = harness.client.request(method, path, data=data)
        assert r.status_code == 403, (method, path, r.status_code)
    assert [a for _, a in audit_actions(harness)[writes_before:]] == ["sign_in"], "nothing changed"


# --- the audit trail --------------------------------------------------------------------------------


def test_service_changes_are_audited_with_before_and_after(harness: Harness) -> None:
    import json

    harness.seed()
    svc = harness.service
    harness.run(svc.rotate_card, "taro@example.co.jp", actor="admin@example.co.jp")
    harness.run(svc.extend_card, "taro@example.co.jp", days=10, actor="cli")
    harness.run(svc.revoke_card, "taro@example.co.jp", actor="admin@example.co.jp")
    rows = list(reversed(harness.run(svc._store.audit_events, limit=100)))
    actions = [(r.actor, r.action) for r in rows]
    assert actions[:6] == [("cli", "company.save"), ("cli", "employee.add"), ("cli", "channel.add"),
                           ("cli", "channel.add"), ("cli", "channel.add"), ("cli", "card.issue")]
    assert actions[6:] == [("admin@example.co.jp", "card.rotate"), ("cli", "card.extend"),
                           ("admin@example.co.jp", "card.revoke")]
    company = rows[0]
    assert json.loads(company.after or "{}")["name"] == "株式会社サンプル"
    extend = rows[7]
    assert json.loads(extend.before or "{}")["expires_at"] != json.loads(extend.after or "{}")["expires_at"]
    employee_add = json.loads(rows[1].after or "{}")
    assert employee_add["email"] == "taro@example.co.jp" and employee_add["family_name"] == "山田"


def test_the_audit_table_is_append_only(harness: Harness, settings: object) -> None:
    from contactcard.config import Settings

    harness.seed()
    assert isinstance(settings, Settings)
    conn = sqlite3.connect(settings.db_path)
    try:
        for sql in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
    finally:
        conn.close()
