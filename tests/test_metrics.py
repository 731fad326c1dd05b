"""/healthz, /readyz and /metrics on the real app; the exposition is read with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from contactcard.app import create_app
from contactcard.config import Settings
from contactcard.models import Outcome, ScanEvent

from .conftest import FakeClock, Harness

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
BOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
UNKNOWN_TOKEN = "A" * 20


def local_harness(settings: Settings, clock: FakeClock) -> Generator[Harness, None, None]:
    """The app seen from a loopback peer (the default test client's address is "testclient")."""
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False, client=("127.0.0.1", 50123)) as client:
        yield Harness(client)


@pytest.fixture
def local(settings: Settings, clock: FakeClock) -> Iterator[Harness]:
    yield from local_harness(settings, clock)


def samples(harness: Harness, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = harness.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_after_n_scans_the_counters_say_n_and_no_label_holds_a_token_or_address(local: Harness) -> None:
    card = local.path(local.seed())
    for _ in range(5):
        assert local.client.get(card, headers={"User-Agent": PHONE}).status_code == 200
    assert local.client.get(card, headers={"User-Agent": BOT}).status_code == 200
    for _ in range(2):
        assert local.client.get(f"/c/{UNKNOWN_TOKEN}", headers={"User-Agent": PHONE}).status_code == 404
    assert local.client.get(f"{card}/vcard", headers={"User-Agent": PHONE}).status_code == 200
    found = samples(local)
    committed = "contactcard_scans_committed_total"
    assert value(found, committed, outcome="view", visitor="person") == 5
    assert value(found, committed, outcome="view", visitor="bot") == 1
    assert value(found, committed, outcome="unknown", visitor="person") == 2
    assert value(found, committed, outcome="vcard", visitor="person") == 1
    assert value(found, "contactcard_scan_batch_size_count") >= 1
    assert value(found, "contactcard_scan_batch_size_sum") == 9  # every committed event was in some batch
    assert value(found, "contactcard_scan_commit_seconds_count") == value(found, "contactcard_scan_batch_size_count")
    assert value(found, "contactcard_scan_queue_depth") == 0
    assert value(found, "contactcard_scan_queue_bound") == 4096
    duration = "contactcard_request_duration_seconds_count"
    assert value(found, duration, route="/c/{token}", method="GET", status="200") == 6
    assert value(found, duration, route="/c/{token}", method="GET", status="404") == 2
    assert value(found, duration, route="/c/{token}/vcard", method="GET", status="200") == 1
    labels = {v for (_, pairs) in found for _, v in pairs}
    token = card.removeprefix("/c/")
    assert not any(token in v or UNKNOWN_TOKEN in v or "127.0.0.1" in v or "testclient" in v for v in labels)
    assert not any(v.startswith("/c/") and "{" not in v for v in labels)  # route templates only, never a path


def test_each_app_counts_its_own_scans(settings: Settings, clock: FakeClock, tmp_path: Path) -> None:
    other_settings = replace(settings, db_path=tmp_path / "other.sqlite3", secret_file=tmp_path / "other.key")
    first_apps, second_apps = local_harness(settings, clock), local_harness(other_settings, clock)
    first, second = next(first_apps), next(second_apps)
    try:
        card = first.path(first.seed())
        for _ in range(3):
            first.client.get(card)
        committed = "contactcard_scans_committed_total"
        assert value(samples(first), committed, outcome="view", visitor="person") == 3
        assert value(samples(second), committed, outcome="view", visitor="person") == 0
    finally:
        for apps in (first_apps, second_apps):
            apps.close()


def test_metrics_refuse_remote_and_proxied_requests(harness: Harness, local: Harness) -> None:
    assert harness.client.get("/metrics").status_code == 403  # peer "testclient": not loopback
    assert local.client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert local.client.get("/metrics", headers={"Forwarded": "for=203.0.113.9"}).status_code == 403
    assert local.client.get("/metrics").status_code == 200


def test_a_token_file_makes_the_token_required(settings: Settings, clock: FakeClock, tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text("s3cret-metrics-token-0123456789\n")
    token_file.chmod(0o600)
    app = create_app(replace(settings, metrics_token_file=token_file), clock=clock)
    with TestClient(app, base_url="http://127.0.0.1", client=("192.0.2.10", 40000)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token-0123456789"})
        assert ok.status_code == 200 and "contactcard_scan_queue_depth" in ok.text


def test_health_and_readiness(local: Harness) -> None:
    assert local.client.get("/healthz").text == "ok"
    ready = local.client.get("/readyz")
    assert ready.status_code == 200 and ready.text == "ready"


@pytest.fixture
def small_queue(settings: Settings, clock: FakeClock) -> Iterator[Harness]:
    yield from local_harness(replace(settings, scan_queue_size=2, scan_batch_size=1), clock)


def test_not_ready_and_shedding_while_the_scan_queue_is_full(small_queue: Harness, clock: FakeClock) -> None:
    local = small_queue
    card = local.path(local.seed())
    writer, store = local.ctx.writer, local.service._store
    waiting: list[asyncio.Future[None]] = []
    event = ScanEvent(time=clock(), outcome=Outcome.VIEW)

    async def hold_the_writer() -> None:  # the writer takes one event and waits for the database
        await store._write_lock.acquire()
        waiting.append(asyncio.ensure_future(writer.record(event)))
        while writer.queue_depth:  # noqa: ASYNC110 (until the writer task has taken it: nothing to wait on)
            await asyncio.sleep(0)

    async def fill_the_queue() -> None:
        waiting.extend(asyncio.ensure_future(writer.record(event)) for _ in range(2))
        await asyncio.sleep(0)

    local.run(hold_the_writer)
    local.run(fill_the_queue)
    not_ready = local.client.get("/readyz")
    assert not_ready.status_code == 503 and "scan queue full (2 of 2)" in not_ready.text
    assert local.client.get(card).status_code == 503
    found = samples(local)
    assert value(found, "contactcard_scans_shed_total", reason="queue_full") == 1
    assert value(found, "contactcard_scan_queue_depth") == 2

    async def release() -> None:
        store._write_lock.release()
        await asyncio.gather(*waiting)

    local.run(release)
    assert local.client.get("/readyz").status_code == 200


def test_not_ready_while_the_database_takes_no_write(local: Harness, settings: Settings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from contactcard.web import ops

    monkeypatch.setattr(ops, "WRITE_PROBE_SECONDS", 0.2)
    other = sqlite3.connect(settings.db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        not_ready = local.client.get("/readyz")
        assert not_ready.status_code == 503 and "database not writable" in not_ready.text
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert local.client.get("/readyz").status_code == 200
