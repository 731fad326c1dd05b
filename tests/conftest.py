"""Fixtures: a real SQLite file per test, the real ASGI app, an injected clock.

Test tiers (select with ``-m``):

- pure: functions without I/O (``test_qr``, ``test_vcard``, ``test_tokens_policy``, ``test_i18n``, policy tables)
- in-process app: the real ASGI app and its lifespan through ``Harness`` on a fresh database (most files)
- CLI: ``contactcard.cli.main(argv)`` in-process against a temporary database (``test_cli``)
- real server, marked ``slow``: ``contactcard serve`` processes on 127.0.0.1 (crash, limits, access log, Caddy)
- browser, marked ``browser`` and ``slow``: real Chromium through Playwright against a real server
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message

from contactcard.app import create_app
from contactcard.cli import main as cli_main
from contactcard.config import Settings
from contactcard.models import ChannelKind, EmployeeProfile, IssuedCard
from contactcard.service import Service
from contactcard.store import EventRow
from contactcard.web.context import AppContext

from .webhook_receiver import Receiver

P = ParamSpec("P")
T = TypeVar("T")
BASE_URL = "https://cards.example.co.jp"  # text only: never dialled, requests go to the in-process app


@contextlib.contextmanager
def write_lock_held_elsewhere(db_path: Path) -> Iterator[None]:
    """Another program holds the database's write lock for the block: a real second connection, as `sqlite3 cc.db`
    with BEGIN EXCLUSIVE would."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(30)
            other.execute("ROLLBACK")

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10), "could not take the write lock"
        yield
    finally:
        release.set()
        holder.join()


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 28, 1, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1, shared by a module's tests (``tests/webhook_receiver.py``)."""
    r = Receiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(db_path=tmp_path / "cc.sqlite3", base_url=BASE_URL, secret_file=tmp_path / "secret.key")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Harness:
    """The running app plus a way to call the async service from a sync test, on the app's own loop."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    @property
    def ctx(self) -> AppContext:
        ctx = self.client.app.state.ctx  # type: ignore[attr-defined]
        assert isinstance(ctx, AppContext)
        return ctx

    @property
    def service(self) -> Service:
        return self.ctx.service

    def run(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        portal = self.client.portal
        assert portal is not None
        return portal.call(functools.partial(fn, *args, **kwargs))

    def events(self, **filters: Any) -> list[EventRow]:
        return list(reversed(self.run(self.service._store.events, limit=100_000, **filters)))

    def path(self, issued: IssuedCard) -> str:
        assert issued.url.startswith(BASE_URL)
        return issued.url[len(BASE_URL):]

    def seed(self) -> IssuedCard:
        """A company with a policy, one employee with three channels, and a live card."""
        svc = self.service
        company = self.run(svc.company)
        from dataclasses import replace

        self.run(svc.save_company, replace(
            company, name="株式会社サンプル", name_en="Sample K.K.", business_hours="平日 9:00–18:00",
            business_hours_en="Weekdays 9:00–18:00", allow_email_domains=("example.co.jp",),
            allow_phone_prefixes=("+813",), allow_line_ids=("@sample",)),
            general={ChannelKind.PHONE: "03-1234-0000", ChannelKind.EMAIL: "info@example.co.jp"}, actor="cli")
        taro = EmployeeProfile(email="taro@example.co.jp", family_name="山田", given_name="太郎", family_kana="ヤマダ",
                               given_kana="タロウ", title="課長", department="営業部")
        self.run(svc.add_employee, taro, actor="cli")
        self.run(svc.add_channel, "taro@example.co.jp", ChannelKind.LINE, "https://line.me/R/ti/p/@sample", actor="cli")
        self.run(svc.add_channel, "taro@example.co.jp", ChannelKind.PHONE, "tel:03-1234-5679", actor="cli")
        self.run(svc.add_channel, "taro@example.co.jp", ChannelKind.EMAIL, "mailto:taro@example.co.jp", actor="cli")
        return self.run(svc.issue_card, "taro@example.co.jp", actor="cli")


@pytest.fixture
def harness(settings: Settings, clock: FakeClock) -> Iterator[Harness]:
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
        yield Harness(client)


@pytest.fixture
def admin_client(harness: Harness) -> TestClient:
    """The harness client, signed in as an admin (see tests/accounts_kit.py)."""
    from .accounts_kit import login, make_admin

    admin = make_admin(harness)
    assert login(harness.client, admin.email, admin.password).status_code == 303
    return harness.client


@pytest.fixture
def employee_client(harness: Harness) -> TestClient:
    """The harness client, signed in as the seeded employee taro (with a live card)."""
    from .accounts_kit import login, make_employee

    harness.seed()
    taro = make_employee(harness)
    assert login(harness.client, taro.email, taro.password).status_code == 303
    return harness.client


async def asgi_get(app: ASGIApp, path: str, headers: Sequence[tuple[bytes, bytes]] = ((b"user-agent", b"testclient"),),
                   client: tuple[str, int] = ("127.0.0.1", 50000)) -> int:
    """One GET straight into the ASGI app, headers as raw bytes: no client library re-encodes them or takes a
    step between the request and the app's first one."""
    path, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), *headers], "client": client, "server": ("127.0.0.1", 80)}
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


class Cli:
    """The ``contactcard`` command run in-process (``main``), with its exit code and captured output."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = cli_main(list(argv))
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def ok(self, *argv: str) -> str:
        code, out, err = self(*argv)
        assert code == 0, err
        return out

    def json(self, *argv: str) -> Any:
        return json.loads(self.ok(*argv, "--json"))

    def refused(self, *argv: str) -> str:
        code, out, err = self(*argv)
        assert code == 1, out
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("contactcard: error: "), err
        return lines[0]
