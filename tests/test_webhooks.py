"""Webhooks: signed with Standard Webhooks (checked by the reference ``standardwebhooks`` library), written to the
outbox with the change or the scan, delivered in order per endpoint with retries driven by the injected clock,
endpoints disabled after 24 h of failure, destinations inside the network refused, the console's delivery log,
the CLI, and an employee's chat notification. The receiver is a real HTTP server on 127.0.0.1; the worker is
driven round by round (``Deliverer.run_once``), never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from contactcard import webhooks as hooks
from contactcard.config import Settings, load_secret
from contactcard.delivery import LEASE, Deliverer
from contactcard.destinations import Destination
from contactcard.models import ValidationError
from contactcard.store import Store
from contactcard.webhook_admin import WebhookAdmin

from .accounts_kit import get, login, make_admin, make_employee, post_form
from .conftest import BASE_URL, Cli, FakeClock, Harness
from .webhook_receiver import Receiver

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
BOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"


@pytest.fixture
def settings(tmp_path: Path, receiver: Receiver) -> Settings:
    """The operator setting that admits 127.0.0.1 (the receiver); the worker is driven by the tests."""
    receiver.reset()
    return Settings(db_path=tmp_path / "cc.sqlite3", base_url=BASE_URL, secret_file=tmp_path / "secret.key",
                    webhook_allow_private=True, webhook_worker=False)


def deliver_all(h: Harness, rounds: int = 50) -> int:
    """Run delivery rounds until nothing is due; the number of attempts."""
    total = 0
    for _ in range(rounds):
        sent = h.run(h.ctx.deliverer.run_once)
        if not sent:
            return total
        total += sent
    raise AssertionError("deliveries never settled")


def add(h: Harness, url: str, events: tuple[str, ...] = hooks.EVENT_TYPES, **kw: Any) -> hooks.Endpoint:
    added = h.run(h.ctx.webhooks.add_endpoint, url, events, actor="test", **kw)
    assert added.secret.startswith("whsec_")
    h.secret = added.secret  # type: ignore[attr-defined]
    return added.endpoint


def scan(h: Harness, path: str, ua: str = IPHONE) -> None:
    assert h.client.get(path, headers={"user-agent": ua}).status_code in (200, 302, 303, 307, 410)


def channel_link(h: Harness, path: str) -> str:
    page = h.client.get(path, headers={"user-agent": IPHONE}).text
    links: list[str] = re.findall(r'href="(/c/[^"]+/go/\d+)"', page)
    assert links
    return links[0]


def test_every_event_is_signed_as_standard_webhooks_verify_it_and_bots_send_none(
        harness: Harness, receiver: Receiver) -> None:
    issued = harness.seed()
    path = harness.path(issued)
    endpoint = add(harness, receiver.url + "/crm?source=contactcard")
    go = channel_link(harness, path)  # one view
    scan(harness, path, BOT)  # a link preview: recorded, never a webhook
    scan(harness, go, BOT)
    scan(harness, path + "/vcard", BOT)
    scan(harness, go)
    scan(harness, path + "/vcard")
    harness.run(harness.service.rotate_card, "taro@example.co.jp", actor="test")
    harness.run(harness.service.revoke_card, "taro@example.co.jp", actor="test")
    harness.run(harness.service.issue_card, "taro@example.co.jp", actor="test")
    harness.run(harness.service.depart, "taro@example.co.jp", actor="test")

    assert deliver_all(harness) == 7
    got = receiver.on("/crm?source=contactcard")
    payloads = [r.verified(harness.secret) for r in got]  # type: ignore[attr-defined]
    assert [p["type"] for p in payloads] == ["scan.viewed", "scan.channel_tapped", "scan.vcard_saved", "card.rotated",
                                             "card.revoked", "card.issued", "employee.departed"]
    assert len({r.webhook_id for r in got}) == 7 and all(r.webhook_id.startswith("msg_") for r in got)
    view, tap, save = payloads[:3]
    assert view["data"]["outcome"] == "view" and view["data"]["employee"]["email"] == "taro@example.co.jp"
    assert tap["data"]["channel"]["kind"] == "line" and save["data"]["outcome"] == "vcard"
    # Nothing that identifies the customer: no user agent, no visitor key, no address.
    assert not {"user_agent", "visitor_key", "referrer", "ip"} & set(view["data"])
    assert IPHONE not in got[0].body.decode()
    assert payloads[3]["data"]["replaced_card_id"] == issued.card.id
    assert payloads[6]["data"]["employee"]["name"] == "山田 太郎"
    # A signature made with another secret, or over another body, is refused by the reference library.
    with pytest.raises(Exception, match="signature"):
        got[0].verified(hooks.endpoint_secret(b"another server secret!!", endpoint.nonce))
    with pytest.raises(Exception, match="signature"):
        replace(got[0], body=got[0].body.replace(b"view", b"vcard")).verified(harness.secret)  # type: ignore[attr-defined]


def test_an_extended_link_is_announced_with_its_new_and_previous_expiry(
        harness: Harness, receiver: Receiver, clock: FakeClock) -> None:
    """A CRM that keeps each card's expiry hears of extensions, one by one or all the links about to expire."""
    issued = harness.seed()
    add(harness, receiver.url + "/expiry", (hooks.CARD_EXTENDED,))
    harness.run(harness.service.extend_card, "taro@example.co.jp", days=30, actor="test")
    clock.advance(days=20)
    assert harness.run(harness.service.extend_expiring, days=60, actor="test") == 1
    assert deliver_all(harness) == 2
    first, second = [r.verified(harness.secret) for r in receiver.on("/expiry")]  # type: ignore[attr-defined]
    assert [first["type"], second["type"]] == ["card.extended", "card.extended"]
    assert first["data"] == {"card_id": issued.card.id, "employee": first["data"]["employee"],
                             "expires_at": "2026-12-28T01:00:00.000Z",
                             "previous_expires_at": "2027-02-26T01:00:00.000Z"}
    assert first["data"]["employee"]["email"] == "taro@example.co.jp"
    assert (second["data"]["previous_expires_at"], second["data"]["expires_at"]) == (
        "2026-12-28T01:00:00.000Z", "2027-02-16T01:00:00.000Z")


def test_the_outbox_row_is_written_with_the_change_or_not_at_all(harness: Harness, receiver: Receiver) -> None:
    harness.seed()
    add(harness, receiver.url + "/crm", (hooks.CARD_ISSUED, hooks.CARD_REVOKED))
    with pytest.raises(Exception, match="already has a card"):
        harness.run(harness.service.issue_card, "taro@example.co.jp", actor="test")  # refused: nothing queued

    async def change_that_fails() -> None:
        async with harness.service._change("test") as change:
            await change.emit(hooks.CARD_REVOKED, {"card_id": 1})
            raise RuntimeError("the change fails after its event was queued")

    with pytest.raises(RuntimeError):
        harness.run(change_that_fails)
    harness.run(harness.service.revoke_card, "taro@example.co.jp", actor="test")
    assert deliver_all(harness) == 1
    assert [r.json()["type"] for r in receiver.on("/crm")] == ["card.revoked"]
    assert receiver.on("/crm")[0].json()["data"]["employee"]["email"] == "taro@example.co.jp", "the real one"


def test_each_endpoint_gets_its_events_in_order_with_retries_backing_off_on_the_injected_clock(
        harness: Harness, receiver: Receiver, clock: FakeClock) -> None:
    issued = harness.seed()
    path = harness.path(issued)
    add(harness, receiver.url + "/slow", (hooks.SCAN_VIEWED,))
    add(harness, receiver.url + "/fine", (hooks.SCAN_VIEWED,))
    receiver.answer = lambda p, count: 503 if p == "/slow" and count <= 3 else 200
    harness.ctx.deliverer.rand = lambda: 0.0  # no jitter: delays are exactly half the base (2.5, 5, 10 s...)
    for _ in range(3):
        scan(harness, path)

    assert harness.run(harness.ctx.deliverer.run_once) == 2  # each endpoint's first event
    assert deliver_all(harness) == 2  # /fine's other two; /slow waits: its first is to be retried in 2.5 s
    assert len(receiver.on("/slow")) == 1 and len(receiver.on("/fine")) == 3
    for delay in (2.5, 5.0):
        clock.advance(seconds=delay - 0.1)
        assert harness.run(harness.ctx.deliverer.run_once) == 0, "not before its time"
        clock.advance(seconds=0.1)
        assert harness.run(harness.ctx.deliverer.run_once) == 1
    assert len(receiver.on("/slow")) == 3
    clock.advance(seconds=10)
    assert deliver_all(harness) == 3  # the fourth try succeeds, then the other two follow in order
    slow = receiver.on("/slow")
    ids = [r.webhook_id for r in slow]
    assert ids[:4] == [ids[0]] * 4, "a retry is the same message: same webhook-id"
    assert [r.body for r in slow[:4]] == [slow[0].body] * 4, "and the same body"
    assert [r.json()["data"]["event_id"] for r in slow[3:]] == [r.json()["data"]["event_id"] for r in
                                                                receiver.on("/fine")], "same order as /fine"
    log = harness.run(harness.ctx.webhooks.log, 1)
    assert [(e.state, e.attempts) for e in reversed(log)] == [("delivered", 4), ("delivered", 1), ("delivered", 1)]


def test_an_outcome_heard_after_the_lease_was_taken_over_is_not_recorded(
        harness: Harness, receiver: Receiver, clock: FakeClock, settings: Settings) -> None:
    """Two deliverers on one database (two servers): the first one's attempt outlives its lease, the second takes
    the delivery over and delivers it; the first one's late failure must not put it back in the queue (a third
    send) nor count as an attempt."""
    path = harness.path(harness.seed())
    endpoint = add(harness, receiver.url + "/late", (hooks.SCAN_VIEWED,))
    scan(harness, path)
    other_store = harness.run(Store.open, settings.db_path)
    other = Deliverer(other_store, load_secret(settings.secret_file), clock=clock, allow_private=True)
    portal = harness.client.portal
    assert portal is not None
    try:
        receiver.answer = lambda p, count: 503 if count == 2 else 200  # the held (first) attempt is heard second
        receiver.hold()
        first = portal.start_task_soon(harness.ctx.deliverer.run_once)
        assert receiver.holding.wait(30), "the first deliverer's attempt is in flight"
        clock.advance(seconds=LEASE.total_seconds() - 1)
        assert harness.run(other.run_once) == 0, "claimed: not sent twice"
        clock.advance(seconds=1)
        assert harness.run(other.run_once) == 1, "the lease ran out: taken over"
        receiver.release()
        assert first.result(30) == 1
        clock.advance(hours=3)
        assert deliver_all(harness) == 0 and harness.run(other.run_once) == 0
    finally:
        receiver.release()
        harness.run(other_store.close)
    assert len(receiver.on("/late")) == 2
    log = harness.run(harness.ctx.webhooks.log, endpoint.id)
    assert [(e.state, e.attempts, e.last_status) for e in log] == [("delivered", 1, 200)]


def test_deliveries_queued_before_the_upgrade_are_claimed_and_sent(tmp_path: Path, receiver: Receiver) -> None:
    """A database from before claims (schema 15) with a pending delivery: after the upgrade it is sent."""
    receiver.reset()
    db, at = tmp_path / "old.sqlite3", datetime(2026, 11, 28, 1, 0, tzinfo=UTC)

    async def queue_on_old_schema() -> None:
        store = await Store.open(db, migrate_to=15)
        try:
            async with store.transaction():
                endpoint = await store.add_webhook_endpoint(hooks.STANDARD, receiver.url + "/old", "",
                                                            [hooks.TEST_EVENT], b"n" * 16, at)
                await store.enqueue_webhook_to(endpoint, at, hooks.TEST_EVENT, {})
        finally:
            await store.close()

    async def deliver_after_upgrade() -> int:
        store = await Store.open(db)
        try:
            deliverer = Deliverer(store, b"s" * 32, clock=lambda: at, allow_private=True)
            return await deliverer.run_once() + await deliverer.run_once()
        finally:
            await store.close()

    asyncio.run(queue_on_old_schema())
    assert asyncio.run(deliver_after_upgrade()) == 1
    assert [r.json()["type"] for r in receiver.on("/old")] == [hooks.TEST_EVENT]


def test_the_delivery_log_keeps_finished_deliveries_30_days(harness: Harness, receiver: Receiver,
                                                           clock: FakeClock) -> None:
    harness.seed()
    endpoint = add(harness, receiver.url + "/kept", (hooks.CARD_REVOKED, hooks.CARD_ISSUED))
    harness.run(harness.service.revoke_card, "taro@example.co.jp", actor="test")
    assert deliver_all(harness) == 1
    clock.advance(days=29)
    harness.run(harness.service.issue_card, "taro@example.co.jp", actor="test")
    assert deliver_all(harness) == 1
    clock.advance(days=2)
    assert deliver_all(harness) == 0
    assert [e.type for e in harness.run(harness.ctx.webhooks.log, endpoint.id)] == ["card.issued"]
    assert harness.run(harness.service._store._scalar, "SELECT COUNT(*) FROM webhook_messages") == 1


def test_retry_delays_grow_exponentially_with_jitter_up_to_two_hours() -> None:
    assert hooks.retry_delay(1, lambda: 0.0) == timedelta(seconds=2.5)
    assert hooks.retry_delay(1, lambda: 0.999999) < timedelta(seconds=5)
    assert hooks.retry_delay(4, lambda: 0.5) == timedelta(seconds=40 * 0.75)
    assert hooks.retry_delay(30, lambda: 0.999999) <= timedelta(hours=2)
    assert hooks.retry_delay(30, lambda: 0.0) == timedelta(hours=1)


def test_an_endpoint_failing_for_24_hours_is_disabled_with_an_alert_and_can_be_enabled_again(
        harness: Harness, receiver: Receiver, clock: FakeClock) -> None:
    issued = harness.seed()
    endpoint = add(harness, receiver.url + "/down", (hooks.SCAN_VIEWED,))
    receiver.answer = lambda p, count: 500
    scan(harness, harness.path(issued))
    scan(harness, harness.path(issued))
    start = clock.now
    attempts = 0
    while harness.run(harness.ctx.webhooks.endpoint, endpoint.id).enabled:
        next_at = harness.run(harness.ctx.webhooks.log, endpoint.id)[-1].next_at  # the head: the oldest
        assert next_at - clock.now <= timedelta(hours=2)
        clock.now = max(clock.now, next_at)
        attempts += harness.run(harness.ctx.deliverer.run_once)
        assert clock.now - start < timedelta(hours=27)
    assert clock.now - start >= timedelta(hours=24)
    assert 15 < attempts < 40 and len(receiver.on("/down")) == attempts
    assert {r.webhook_id for r in receiver.on("/down")} == {receiver.on("/down")[0].webhook_id}, "only the head"
    log = harness.run(harness.ctx.webhooks.log, endpoint.id)
    assert [e.state for e in log] == ["pending", "failed"]
    assert harness.run(harness.ctx.deliverer.run_once) == 0, "a disabled endpoint gets nothing"

    make_admin(harness)
    login(harness.client, "admin@example.co.jp")
    for page in ("/admin", "/admin/webhooks", f"/admin/webhooks/{endpoint.id}"):
        html = get(harness.client, page).text
        assert "24 時間失敗が続いたため停止しました" in html, page
        assert receiver.url in html
    receiver.answer = lambda p, count: 200
    r = post_form(harness.client, f"/admin/webhooks/{endpoint.id}", f"/admin/webhooks/{endpoint.id}/enable", {})
    assert r.status_code == 303
    assert deliver_all(harness) == 1, "the pending one resumes; the given-up one waits for a redeliver"
    assert "was disabled" not in get(harness.client, "/admin").text


def test_destinations_inside_the_network_are_refused_unless_the_operator_allows_them(
        harness: Harness, receiver: Receiver, clock: FakeClock) -> None:
    store = harness.service._store
    addresses = {"crm.example.com": ["93.184.216.34"], "rebind.example.com": ["93.184.216.34"],
                 "inside.example.com": ["10.1.2.3"], "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
                 "metadata.example.com": ["169.254.169.254"], "v6.example.com": ["::ffff:127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        if host not in addresses:
            raise OSError("no such host")
        return addresses[host]

    strict = WebhookAdmin(store, clock, secret=b"s" * 32, allow_private=False, resolver=resolver)
    for url in ("http://127.0.0.1:9/hook", f"{receiver.url}/x", "https://127.0.0.1/hook", "https://[::1]/hook",
                "https://169.254.169.254/latest", "https://inside.example.com/hook", "https://mixed.example.com/",
                "https://metadata.example.com/", "https://v6.example.com/", "ftp://crm.example.com/",
                "https://user:pw@crm.example.com/", "https://2130706433/"):
        with pytest.raises(ValidationError):
            harness.run(strict.add_endpoint, url, [hooks.CARD_ISSUED], actor="test")
    ok = harness.run(strict.add_endpoint, "https://rebind.example.com/hook", [hooks.CARD_ISSUED], actor="test")

    # The name now resolves inside (DNS rebinding): the attempt is refused before any connection.
    addresses["rebind.example.com"] = ["127.0.0.1"]
    sent: list[str] = []

    def send(dest: Destination, address: str, body: bytes, headers: dict[str, str]) -> int:
        sent.append(address)
        return 200

    worker = Deliverer(store, b"s" * 32, clock=clock, allow_private=False, resolver=resolver, send=send)
    harness.seed()  # issues a card: a card.issued event for the endpoint
    assert harness.run(worker.run_once) == 1 and sent == []
    [entry] = harness.run(strict.log, ok.endpoint.id)
    assert entry.state == "pending" and "refused" in entry.last_error and "127.0.0.1" in entry.last_error
    # Back to a public address: it is sent to the very address that was checked.
    addresses["rebind.example.com"] = ["93.184.216.34"]
    clock.advance(seconds=10)
    assert harness.run(worker.run_once) == 1 and sent == ["93.184.216.34"]


def test_redirects_are_not_followed(harness: Harness, receiver: Receiver) -> None:
    harness.seed()
    add(harness, receiver.url + "/moved", (hooks.CARD_REVOKED,))
    receiver.answer = lambda p, count: 307 if p == "/moved" else 200
    harness.run(harness.service.revoke_card, "taro@example.co.jp", actor="test")
    assert harness.run(harness.ctx.deliverer.run_once) == 1
    [entry] = harness.run(harness.ctx.webhooks.log, 1)
    assert entry.state == "pending" and entry.last_status == 307
    assert [r.path for r in receiver.received] == ["/moved"]


def test_console_adds_an_endpoint_shows_the_secret_once_sends_a_test_event_and_redelivers(
        admin_client: TestClient, harness: Harness, receiver: Receiver) -> None:
    r = post_form(admin_client, "/admin/webhooks", "/admin/webhooks", {
        "url": receiver.url + "/console", "name": "CRM", "kind": "standard", "events": "card.issued"})
    assert r.status_code == 200
    secret = re.search(r'<code id="webhook-secret">(whsec_[^<]+)</code>', r.text)
    assert secret
    assert secret[1] not in get(admin_client, "/admin/webhooks").text, "shown once"
    refused = post_form(admin_client, "/admin/webhooks", "/admin/webhooks", {"url": "ftp://x", "kind": "standard",
                                                                              "events": "card.issued"})
    assert refused.status_code == 400 and "https://" in refused.text
    assert admin_client.post("/admin/webhooks/1/test", data={"csrf": "forged"}).status_code == 403
    assert post_form(admin_client, "/admin/webhooks/1", "/admin/webhooks/1/test", {}).status_code == 303
    assert deliver_all(harness) == 1
    [test] = receiver.on("/console")
    assert test.verified(secret[1])["type"] == "webhook.test"
    log_page = get(admin_client, "/admin/webhooks/1").text
    assert test.webhook_id in log_page
    delivery = re.search(r'action="(/admin/webhooks/1/deliveries/\d+/redeliver)"', log_page)
    assert delivery
    assert post_form(admin_client, "/admin/webhooks/1", delivery[1], {}).status_code == 303
    assert deliver_all(harness) == 1
    again = receiver.on("/console")[1]
    assert again.webhook_id == test.webhook_id and again.body == test.body
    assert post_form(admin_client, "/admin/webhooks/1", "/admin/webhooks/99/test", {}).status_code == 404
    assert post_form(admin_client, "/admin/webhooks/1", "/admin/webhooks/1/deliveries/999/redeliver",
                     {}).status_code == 404
    assert post_form(admin_client, "/admin/webhooks", "/admin/webhooks/1/remove", {}).status_code == 303
    assert harness.run(harness.ctx.webhooks.endpoints) == []
    assert harness.run(harness.service._store._scalar, "SELECT COUNT(*) FROM webhook_messages") == 0


def test_the_cli_adds_lists_and_removes_endpoints_printing_the_secret_once(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cli = Cli(capsys)
    monkeypatch.setenv("CONTACTCARD_DB", str(tmp_path / "cli.sqlite3"))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(tmp_path / "cli.key"))
    monkeypatch.setenv("CONTACTCARD_BASE_URL", BASE_URL)
    assert "https://" in cli.refused("webhook", "add", receiver.url + "/cli")  # not allowed by default
    monkeypatch.setenv("CONTACTCARD_WEBHOOK_ALLOW_PRIVATE", "1")
    added = cli.json("webhook", "add", receiver.url + "/cli", "--events", "card.issued,card.revoked",
                     "--events", "employee.departed", "--name", "CRM")
    assert added["secret"].startswith("whsec_")
    assert added["events"] == ["card.issued", "card.revoked", "employee.departed"] and added["name"] == "CRM"
    text = cli.ok("webhook", "add", receiver.url + "/all")
    assert "secret: whsec_" in text and "scan.viewed" in text
    listed = cli.json("webhook", "list")
    assert [e["id"] for e in listed] == [1, 2] and "whsec_" not in json.dumps(listed)
    assert "unknown event type" in cli.refused("webhook", "add", receiver.url + "/x", "--events", "scan.everything")
    assert "no webhook endpoint 9" in cli.refused("webhook", "remove", "9")
    cli.ok("webhook", "test", "1")
    cli.ok("webhook", "remove", "2")
    assert [e["id"] for e in cli.json("webhook", "list")] == [1]


def test_an_employee_opts_in_on_me_to_a_chat_note_without_customer_details(
        harness: Harness, receiver: Receiver, clock: FakeClock) -> None:
    issued = harness.seed()
    path = harness.path(issued)
    chat = add(harness, receiver.url + "/chat/T000/B000", (), kind=hooks.CHAT, name="#sales")
    taro = make_employee(harness)
    login(harness.client, taro.email)
    page = get(harness.client, "/me").text
    assert "#sales" in page and "/chat/T000" not in page, "the chat's URL (its credential) is not shown"
    assert post_form(harness.client, "/me", "/me/notify", {"endpoint": str(chat.id)}).status_code == 303
    assert post_form(harness.client, "/me", "/me/notify", {"endpoint": "99"}).status_code == 400
    assert f'value="{chat.id}" selected' in get(harness.client, "/me").text

    harness.client.cookies.clear()  # the customer
    go = channel_link(harness, path)
    scan(harness, go, BOT)  # a preview bot: never
    scan(harness, path + "/vcard", BOT)
    scan(harness, go)
    scan(harness, path + "/vcard")
    clock.advance(minutes=2)
    assert deliver_all(harness) == 2
    texts = [r.json()["text"] for r in receiver.on("/chat/T000/B000")]
    assert texts == [
        "山田 太郎さん: お客さまが2分前に連絡先のボタンをタップしました。"
        "/ A customer tapped one of your channels 2 minutes ago.",
        "山田 太郎さん: お客さまが2分前に連絡先を保存しました。/ A customer saved your contact 2 minutes ago.",
    ]
    body = b"".join(r.body for r in receiver.on("/chat/T000/B000"))
    assert IPHONE.encode() not in body and b"iPhone" not in body and b"Safari" not in body

    login(harness.client, taro.email)  # opting out stops them
    assert post_form(harness.client, "/me", "/me/notify", {"endpoint": ""}).status_code == 303
    harness.client.cookies.clear()
    scan(harness, path + "/vcard")
    assert deliver_all(harness) == 0


def test_the_dashboard_shows_an_endpoint_disabled_elsewhere_at_most_five_seconds_late(
        harness: Harness, receiver: Receiver, clock: FakeClock, settings: Settings) -> None:
    """The dashboard reads the disabled endpoints once per its 5 s, as it reads its figures: an admin holding
    reload down costs the scans no read per reload, and an alert raised by another process shows within 5 s."""
    endpoint = add(harness, receiver.url + "/down", (hooks.SCAN_VIEWED,))
    make_admin(harness)
    login(harness.client, "admin@example.co.jp")
    assert receiver.url not in get(harness.client, "/admin").text
    with sqlite3.connect(settings.db_path) as conn:  # the worker of another server gave up on it
        conn.execute("UPDATE webhook_endpoints SET enabled = 0, disabled_at = '2026-11-28T00:00:00.000000Z', "
                     "disabled_reason = 'failing' WHERE id = ?", (endpoint.id,))
    clock.now += timedelta(seconds=4)
    assert receiver.url not in get(harness.client, "/admin").text
    clock.now += timedelta(seconds=2)
    assert receiver.url in get(harness.client, "/admin").text
    r = post_form(harness.client, f"/admin/webhooks/{endpoint.id}", f"/admin/webhooks/{endpoint.id}/enable", {})
    assert r.status_code == 303
    assert receiver.url not in get(harness.client, "/admin").text, "enabled here: gone at once"
