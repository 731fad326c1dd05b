"""The scan's hot path: small, no blocking script, no file but the database, no SQL beyond what it needs."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contactcard.app import create_app
from contactcard.config import Settings, load_secret
from contactcard.service import Service
from contactcard.store import Store

from .conftest import Harness, asgi_get

BUDGET = 30 * 1024
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")

_watching: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _watching is not None and event in ("open", "os.listdir", "os.scandir", "shutil.copyfile"):
        _watching.append(f"{event} {args[0]!r}")


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one only records while a test watches


@pytest.fixture
def opened_files() -> Iterator[list[str]]:
    global _watching
    _watching = []
    try:
        yield _watching
    finally:
        _watching = None


def test_the_customer_page_with_everything_it_loads_is_under_30_kb_and_runs_no_blocking_script(
        harness: Harness) -> None:
    issued = harness.seed()
    for lang in ("ja", "en", "zh-Hans", "zh-Hant", "ko"):
        r = harness.client.get(harness.path(issued), headers={"accept-language": lang, "user-agent": IPHONE})
        assert r.status_code == 200
        html = r.text
        assets = re.findall(r'<link[^>]+href="(/[^"]+)"', html) + re.findall(r'<img[^>]+src="(/[^"]+)"', html)
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert all(re.search(r"\b(defer|async)\b|type=\"module\"", s) for s in scripts), scripts
        total = len(r.content) + sum(len(harness.client.get(a).content) for a in assets)
        assert any(a.startswith("/static/") and ".css" in a for a in assets)
        assert any(a == "/favicon.ico" for a in assets), "a favicon is served (no console 404)"
        assert total < BUDGET, f"{total} bytes for {lang}"


def test_a_warm_scan_opens_no_file_and_runs_only_the_sql_it_needs(harness: Harness,
                                                                     opened_files: list[str]) -> None:
    issued = harness.seed()
    path = harness.path(issued)
    assert harness.client.get(path, headers={"user-agent": IPHONE}).status_code == 200  # warms the caches
    statements: list[str] = []
    harness.run(harness.service._store._conn.set_trace_callback, statements.append)
    opened_files.clear()
    try:
        for _ in range(3):
            assert harness.client.get(path, headers={"user-agent": IPHONE}).status_code == 200
    finally:
        harness.run(harness.service._store._conn.set_trace_callback, None)  # type: ignore[arg-type]
    assert opened_files == [], "templates are compiled once; nothing but the database is touched"
    kinds = sorted({" ".join(s.split()[:2]) for s in statements})
    # "SELECT id," is the webhook outbox's look for an enabled endpoint (none here: nothing else is done for it)
    assert kinds == ["BEGIN IMMEDIATE", "COMMIT", "INSERT INTO", "PRAGMA data_version", "SELECT id,",
                     "SELECT timezone"], statements
    inserts = sorted(s.split()[2] for s in statements if s.split()[0] == "INSERT")
    assert inserts == ["daily_totals"] * 3 + ["daily_visitors"] * 3 + ["events"] * 3, \
        "one event per scan and its share of the daily totals, nothing else written"


def _assert_same_answer(fast: Any, routed: Any) -> None:
    def normal(text: str) -> str:
        return re.sub(r'nonce="[^"]+"', 'nonce=""', text)

    assert fast.status_code == routed.status_code
    assert normal(fast.text) == normal(routed.text)
    skip = {"date", "content-security-policy", "content-length"}
    assert {k: v for k, v in fast.headers.items() if k not in skip} == \
        {k: v for k, v in routed.headers.items() if k not in skip}
    fast_csp, routed_csp = fast.headers["content-security-policy"], routed.headers["content-security-policy"]
    assert re.sub(r"nonce-[^']+", "", fast_csp) == re.sub(r"nonce-[^']+", "", routed_csp)
    nonce = fast_csp.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in fast.text, "the page's style carries the response's own nonce"


def test_the_fast_path_answers_exactly_like_the_routed_page(harness: Harness, clock: Any) -> None:
    """A plain GET takes the raw-ASGI fast path; a query string sends the same hit through the routes."""
    issued = harness.seed()
    path = harness.path(issued)
    unknown = "/c/" + "A" * 20
    pages = [(path, 200), (unknown, 404)]
    # Every language, by header and (for the last) by the switch's cookie, which the fast path reads too.
    readers = [({"accept-language": header}, lang) for header, lang in (
        ("ja", "ja"), ("en", "en"), ("zh-CN", "zh-Hans"), ("zh-TW", "zh-Hant"), ("ko-KR", "ko"))]
    readers.append(({"accept-language": "en", "cookie": "lang=zh-Hant"}, "zh-Hant"))
    for headers, lang in readers:
        for target, status in pages:
            fast = harness.client.get(target, headers=headers)
            routed = harness.client.get(target + "?utm_source=poster", headers=headers)
            assert fast.status_code == status, (target, headers)
            assert fast.headers["content-language"] == lang
            _assert_same_answer(fast, routed)
    harness.run(harness.service.revoke_card, "taro@example.co.jp", actor="admin@example.co.jp")
    for headers, _ in readers:
        fast = harness.client.get(path, headers=headers)
        routed = harness.client.get(path + "?utm_source=poster", headers=headers)
        assert fast.status_code == 410
        _assert_same_answer(fast, routed)
    assert [e.outcome.value for e in harness.events()] == ["view", "view", "unknown", "unknown"] * len(readers) + [
        "revoked"] * 2 * len(readers), "every hit recorded once, whichever path answered it"


def test_a_change_made_by_another_connection_is_seen_at_once(harness: Harness, settings: Settings) -> None:
    issued = harness.seed()
    path = harness.path(issued)
    assert harness.client.get(path).status_code == 200

    async def revoke_elsewhere(db: Path) -> None:  # what `contactcard card revoke` does, on its own connection
        store = await Store.open(db)
        try:
            other = Service(store, secret=load_secret(settings.secret_file), base_url="https://x")
            await other.revoke_card("taro@example.co.jp", actor="cli")
        finally:
            await store.close()

    asyncio.run(revoke_elsewhere(settings.db_path))
    assert harness.client.get(path).status_code == 410, "the cached card was dropped on the other commit"


async def _start_up_maintenance_done() -> None:
    """Wait until this loop's server has finished its start-up maintenance (roll-up and purge, a write
    transaction) and sleeps until the next day's run. The race below holds this loop while the other server
    writes; a transaction left open on the held loop would block that write, which two real servers (each on
    its own loop) never do to each other."""
    task = next(t for t in asyncio.all_tasks() if t.get_name() == "scan-maintenance")
    async with asyncio.timeout(60):
        while getattr(getattr(task.get_coro(), "cr_await", None), "cr_code", None) is not asyncio.sleep.__code__:
            assert not task.done(), task
            await asyncio.sleep(0.01)  # its statements run on the database thread, not on this loop


def test_a_request_sent_after_a_revoke_returned_on_another_server_never_gets_the_card(
        harness: Harness, settings: Settings, clock: Any) -> None:
    """Finding 19: server B must not answer from a data_version check that was already in flight."""
    issued = harness.seed()
    path = harness.path(issued)

    async def scenario() -> tuple[int, int]:
        other = create_app(settings, clock=clock)  # server B: its own store on the same file, on this loop
        async with other.router.lifespan_context(other):
            b_service = other.state.ctx.service
            await _start_up_maintenance_done()
            assert await asgi_get(other, path) == 200  # B has the live card cached
            before = asyncio.create_task(asgi_get(other, path))
            for _ in range(1000):  # until B's check for that request has sent its PRAGMA to B's database thread
                if b_service._current_started:
                    break
                await asyncio.sleep(0)
            assert b_service._current_started
            # Server A revokes and returns; B's loop is held meanwhile, so its check cannot finish first.
            harness.run(harness.service.revoke_card, "taro@example.co.jp", actor="admin@example.co.jp")
            after = asyncio.create_task(asgi_get(other, path))  # sent after the revoke returned
            return await before, await after

    first, second = asyncio.run(scenario())
    assert first in (200, 410)
    assert second == 410, "a request sent after the revoke returned was served the revoked card"
