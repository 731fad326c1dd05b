"""Two real ``contactcard serve`` processes on one database file (a rolling restart, or a second instance started
on purpose or by mistake): each webhook delivery is claimed by exactly one of them before it is sent, so every
event reaches the receiver once; a process stopped mid-delivery hands it back, one killed leaves its claim to
lapse, after which another process sends it again (same webhook-id and body). The receiver is a real HTTP server
on 127.0.0.1 that checks every signature with the reference ``standardwebhooks`` library and counts deliveries per
webhook-id. And what the README says the two share: a session, its sign-out and a revocation made through one
server hold on the other at its very next request.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest

from contactcard import delivery
from contactcard.accounts import Accounts
from contactcard.config import load_secret
from contactcard.delivery import Deliverer
from contactcard.store import Store
from contactcard.webhook_admin import WebhookAdmin

from .accounts_kit import ADMIN_EMAIL as ADMIN
from .accounts_kit import PASSWORD
from .conftest import FakeClock
from .live_server import LiveServer, seed_card
from .webhook_receiver import Receiver

pytestmark = pytest.mark.slow

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")


@dataclass
class Pair:
    """Two servers on one database, the card they both serve, and the endpoints' secrets by path."""

    a: LiveServer
    b: LiveServer
    db: Path
    secret_file: Path
    card: str
    secrets: dict[str, str]

    def scan(self, server: LiveServer, label: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("GET", self.card, headers={"User-Agent": f"{IPHONE} {label}"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200  # committed, with its outbox rows
        finally:
            conn.close()

    def pending(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'").fetchone()[0])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("two-servers")
    db, secret_file = tmp / "cc.sqlite3", tmp / "secret.key"
    card = seed_card(db, secret_file)
    env = {"CONTACTCARD_DB": str(db), "CONTACTCARD_SECRET_FILE": str(secret_file),
           "CONTACTCARD_WEBHOOK_ALLOW_PRIVATE": "1"}
    pair = Pair(LiveServer(env, tmp / "a.log"), LiveServer(env, tmp / "b.log"), db, secret_file, card, {})
    set_endpoints(pair, receiver, "/crm", "/sales")
    try:
        pair.a.start()
        pair.b.start()
        yield pair
    finally:
        pair.a.stop()
        pair.b.stop()


def counted(receiver: Receiver, path: str, secret: str) -> Counter[str]:
    """Deliveries per webhook-id on ``path``, each verified by ``standardwebhooks`` first."""
    got = receiver.on(path)
    for r in got:
        assert r.verified(secret)["type"] == "scan.viewed"
    return Counter(r.webhook_id for r in got)


def test_each_event_is_delivered_once_though_both_servers_deliver(pair: Pair, receiver: Receiver) -> None:
    n = 30
    receiver.delay = 0.1  # each answer takes a while: a delivery is in flight most of the time
    for i in range(n):  # scans through both servers: each one's writer queues outbox rows
        pair.scan(pair.a if i % 2 else pair.b, f"once-{i}")
    assert receiver.wait_for(lambda got: len({(r.path, r.webhook_id) for r in got}) >= 2 * n), \
        f"every event delivered: {len(receiver.received)} received"
    # Delivered in the database: no process holds (or can take) any of them any more.
    assert wait_until(lambda: pair.pending() == 0)
    for path in ("/crm", "/sales"):
        per_id = counted(receiver, path, pair.secrets[path])
        assert len(per_id) == n
        assert set(per_id.values()) == {1}, f"{path}: sent twice: {[i for i, c in per_id.items() if c > 1]}"
        events = [r.json()["data"]["event_id"] for r in receiver.on(path)]
        assert events == sorted(events), "in order per endpoint"


def holder(pair: Pair, endpoint_id: int) -> LiveServer:
    """The server whose claim holds the endpoint's oldest pending delivery (the claim names host and process)."""
    with sqlite3.connect(pair.db) as conn:
        claim = conn.execute("SELECT claim FROM webhook_deliveries WHERE endpoint_id = ? AND state = 'pending' "
                             "ORDER BY id LIMIT 1", (endpoint_id,)).fetchone()[0]
    pid = int(claim.split(":")[1])
    found = [s for s in (pair.a, pair.b) if s.proc is not None and s.proc.pid == pid]
    assert found, f"claimed by {claim}, neither server"
    return found[0]


def lease_end(pair: Pair, endpoint_id: int) -> datetime:
    with sqlite3.connect(pair.db) as conn:
        text = conn.execute("SELECT next_at FROM webhook_deliveries WHERE endpoint_id = ? AND state = 'pending' "
                            "ORDER BY id LIMIT 1", (endpoint_id,)).fetchone()[0]
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def set_endpoints(pair: Pair, receiver: Receiver, *paths: str) -> list[int]:
    """Replace the endpoints with one for each of ``paths`` (so only their deliveries are in play), as the console
    does it (in this process: a command would cost a second a call); their ids. The servers see them at their
    next look."""

    async def replace_endpoints() -> list[int]:
        store = await Store.open(pair.db)
        try:
            admin = WebhookAdmin(store, lambda: datetime.now(UTC), secret=load_secret(pair.secret_file),
                                 allow_private=True)
            for endpoint in await admin.endpoints():
                await admin.remove_endpoint(endpoint.id, actor="test")
            ids = []
            for path in paths:
                added = await admin.add_endpoint(receiver.url + path, ["scan.viewed"], actor="test")
                pair.secrets[path] = added.secret
                ids.append(added.endpoint.id)
            return ids
        finally:
            await store.close()

    return asyncio.run(replace_endpoints())


def check_arrivals(receiver: Receiver, path: str, secret: str, events: int, repeated: str) -> None:
    """``events`` events arrived, verified, first arrivals in event order, each once but ``repeated`` (twice: the
    attempt its first sender never heard answered, and the retry), a repeat with the same body."""
    per_id = counted(receiver, path, secret)
    assert len(per_id) == events
    assert per_id.pop(repeated) == 2
    assert set(per_id.values()) == {1}
    first: dict[str, int] = {}
    bodies: dict[str, bytes] = {}
    for r in receiver.on(path):
        first.setdefault(r.webhook_id, r.json()["data"]["event_id"])
        assert bodies.setdefault(r.webhook_id, r.body) == r.body, "a repeat is the same message"
    assert list(first.values()) == sorted(first.values()), "in order per endpoint"


def test_a_server_stopped_mid_delivery_hands_it_to_the_other_at_once(pair: Pair, receiver: Receiver) -> None:
    """A rolling restart: SIGTERM while a delivery is in flight gives the claim back, so the other server sends it
    again at its next look, without waiting for the lease."""
    [endpoint] = set_endpoints(pair, receiver, "/stop")
    receiver.hold()  # the next delivery is received and left unanswered
    for i in range(3):
        pair.scan(pair.a if i % 2 else pair.b, f"stop-{i}")
    assert receiver.holding.wait(30), "a delivery is in flight"
    stopping = holder(pair, endpoint)
    assert stopping.proc is not None
    stopping.proc.send_signal(signal.SIGTERM)
    assert receiver.wait_for(lambda got: len([r for r in got if r.path == "/stop"]) >= 3), \
        "the other server sent the held one again and the two behind it, the lease notwithstanding"
    receiver.release()
    stopping.proc.wait(30)
    assert wait_until(lambda: pair.pending() == 0)
    stopping.start()  # back for the next test
    first = receiver.on("/stop")[0].webhook_id  # the held POST is recorded by the receiver only once released
    check_arrivals(receiver, "/stop", pair.secrets["/stop"], 3, repeated=first)


def test_a_server_killed_mid_delivery_leaves_it_claimed_until_the_lease_ends(pair: Pair, receiver: Receiver) -> None:
    """SIGKILL while a delivery is in flight: its claim stays, so no one sends that endpoint anything (its order
    holds) until the lease has run out; then the next deliverer to look sends it again. The later deliverer here
    runs in the test's process on the injected clock, set to just before and at the lease's end."""
    [endpoint] = set_endpoints(pair, receiver, "/kill")
    receiver.hold()
    for i in range(3):
        pair.scan(pair.a if i % 2 else pair.b, f"kill-{i}")
    assert receiver.holding.wait(30), "a delivery is in flight"
    killed = holder(pair, endpoint)
    assert killed.proc is not None
    os.kill(killed.proc.pid, signal.SIGKILL)
    killed.proc.wait(10)
    receiver.release()
    assert receiver.wait_for(lambda got: any(r.path == "/kill" for r in got))
    held = receiver.on("/kill")[0].webhook_id
    until = lease_end(pair, endpoint)
    assert timedelta(minutes=4) < until - datetime.now(UTC) <= delivery.LEASE

    async def later_deliverer() -> None:
        clock = FakeClock(until - timedelta(seconds=1))
        store = await Store.open(pair.db)
        try:
            deliverer = Deliverer(store, load_secret(pair.secret_file), clock=clock, allow_private=True)
            assert await deliverer.run_once() == 0, "still claimed by the killed server"
            clock.now = until
            assert await deliverer.run_once() == 1, "the lease is over: sent again"
            while await deliverer.run_once():  # the two behind it, shared with the surviving server
                pass
        finally:
            await store.close()

    asyncio.run(later_deliverer())
    assert wait_until(lambda: pair.pending() == 0)
    check_arrivals(receiver, "/kill", pair.secrets["/kill"], 3, repeated=held)
    killed.start()


def test_a_session_a_sign_out_and_a_revocation_made_on_one_server_hold_on_the_other(pair: Pair) -> None:
    async def make_admin() -> None:
        store = await Store.open(pair.db)
        try:
            await Accounts(store, lambda: datetime.now(UTC)).create_admin(ADMIN, password=PASSWORD, actor="cli")
        finally:
            await store.close()

    asyncio.run(make_admin())
    with httpx.Client(base_url=pair.a.base) as a, httpx.Client(base_url=pair.b.base) as b:
        form = {"csrf": csrf_of(a.get("/login")), "email": ADMIN, "password": PASSWORD}
        assert a.post("/login", data=form).status_code == 303
        b.cookies = a.cookies  # the same browser, sent to the other server by the proxy
        assert b.get("/admin").status_code == 200, "signed in through A: signed in on B"
        revoke = "/admin/employees/1/card/revoke"
        assert b.post(revoke, data={"csrf": csrf_of(b.get(revoke)), "confirm": "yes"}).status_code == 303
        scan = a.get(pair.card, headers={"User-Agent": IPHONE})
        assert scan.status_code == 410, "revoked through B: A's very next scan answers that it ended"
        assert a.post("/logout", data={"csrf": csrf_of(a.get("/admin"))}).status_code in (200, 303)
        assert b.get("/admin").status_code == 303, "signed out through A: refused by B's very next request"


def csrf_of(page: httpx.Response) -> str:
    assert page.status_code == 200, page.status_code
    found = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert found, "no CSRF field on the page"
    return found[1]


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll the shared database until ``predicate`` holds (the servers' work is seen there, not announced)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False
