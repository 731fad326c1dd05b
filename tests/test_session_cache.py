"""The session check answered from memory (accounts.SessionCache): fast, and never honouring a session that
anyone, this server or another program, has ended or stripped of its rights before the request was sent.

Each test warms the cache first (the same cookie answered twice), then changes something and expects the very
next request to see it: no clock advance, no waiting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from contactcard.config import Settings

from .accounts_kit import ADMIN_EMAIL, accounts, login, make_admin, make_employee, post_form
from .conftest import Cli, FakeClock, Harness


@pytest.fixture
def session_reads(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """The session rows read from the database (the real store, its reads counted)."""
    store = harness.service._store
    real = store.session
    reads: list[bytes] = []

    async def counted(id_hash: bytes) -> object:
        reads.append(id_hash)
        return await real(id_hash)

    monkeypatch.setattr(store, "session", counted)
    yield reads


def warm(harness: Harness, path: str = "/admin") -> None:
    for _ in range(2):
        assert harness.client.get(path).status_code == 200


def test_a_session_is_read_once_then_answered_from_memory(harness: Harness, session_reads: list[bytes]) -> None:
    make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    session_reads.clear()
    for _ in range(5):
        assert harness.client.get("/admin").status_code == 200
    assert len(session_reads) == 1


def test_signing_out_refuses_the_cookie_at_once(harness: Harness) -> None:
    make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    token = harness.client.cookies["__Host-cc_session"]
    warm(harness)
    assert post_form(harness.client, "/admin", "/logout", {}).status_code == 303
    harness.client.cookies.set("__Host-cc_session", token)  # the old cookie, replayed
    r = harness.client.get("/admin")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin"


def test_a_password_reset_ends_a_cached_session_at_once(harness: Harness) -> None:
    admin = make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    warm(harness)
    link = harness.run(accounts(harness).reset_link, admin.user.id, actor="cli")
    harness.run(accounts(harness).accept_link, link.token, "another long password")
    assert harness.client.get("/admin").status_code == 303


def test_an_employee_departed_by_another_program_is_signed_out_at_once(harness: Harness, settings: Settings,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI commits on its own connection: the server learns of it through PRAGMA data_version."""
    harness.seed()
    taro = make_employee(harness)
    login(harness.client, taro.email)
    warm(harness, "/me")
    monkeypatch.setenv("CONTACTCARD_DB", str(settings.db_path))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(settings.secret_file))
    monkeypatch.setenv("CONTACTCARD_BASE_URL", "https://cards.example.co.jp")
    Cli(capsys).ok("employee", "depart", "--employee", taro.email)
    r = harness.client.get("/me")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/me"


def test_sessions_deleted_by_another_connection_are_refused_at_once(harness: Harness, settings: Settings) -> None:
    """Whatever another program does to the sessions table (here, all of them deleted) counts at once."""
    make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    warm(harness)
    with sqlite3.connect(Path(settings.db_path)) as conn:
        conn.execute("DELETE FROM sessions")
    assert harness.client.get("/admin").status_code == 303


def test_a_role_changed_by_another_connection_counts_at_once(harness: Harness, settings: Settings) -> None:
    make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    warm(harness)
    with sqlite3.connect(Path(settings.db_path)) as conn:
        conn.execute("UPDATE users SET role = 'employee' WHERE email = ?", (ADMIN_EMAIL,))
    assert harness.client.get("/admin").status_code == 403


def test_time_limits_are_checked_on_every_request(harness: Harness, clock: FakeClock,
                                                  session_reads: list[bytes]) -> None:
    """A cached session still ends after 30 idle minutes (admin), however warm the cache."""
    make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    warm(harness)
    clock.advance(minutes=30, seconds=1)
    r = harness.client.get("/admin")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin"
    assert harness.run(harness.service._store.count_sessions) == 0, "the expired row is deleted"
