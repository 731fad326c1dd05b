"""The scan lane (``web.lane``) on the real ``contactcard serve``: a warm scan is answered by the HTTP protocol
itself, and a customer, a proxy, an operator and another program see exactly what the app would have given.

Every test speaks HTTP/1.1 over a plain socket to 127.0.0.1, so keep-alive, pipelining and HTTP/1.0 are the
bytes a phone or a proxy would send. The first scan of a link goes through the app (the lane only answers links
already in the service's cache); the requests after it are the lane's.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from uvicorn.server import ServerState

from contactcard.logs import OncePerInterval
from contactcard.serving import Limits, guarded_protocol
from contactcard.web.security import csp_tail

from .conftest import Harness
from .live_server import LiveServer, seed_card
from .test_serving_guards import MemoryTransport

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
NONCE = re.compile(rb"nonce-([A-Za-z0-9_-]{22})'|nonce=\"([A-Za-z0-9_-]{22})\"")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def without_nonce(self) -> bytes:
        return NONCE.sub(b"NONCE", self.body)

    def policy_without_nonce(self) -> str:
        return re.sub(r"'nonce-[^']+'", "'nonce-NONCE'", self.headers["content-security-policy"])


class Connection:
    """One client connection that reads answers as HTTP/1.1 frames them (Content-Length)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, *requests: bytes) -> None:
        self.sock.sendall(b"".join(requests))

    def answer(self) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"header {name} sent twice"
            headers[name.lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Answer(int(status_line.split()[1]), headers, body)

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, "the server closed the connection before the whole answer"
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def get(path: str, *, version: str = "1.1", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: 127.0.0.1", f"User-Agent: {IPHONE}",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def events(db: Path) -> list[tuple[str, str]]:
    """(outcome, visitor key) of every stored event, oldest first."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT outcome, visitor_key FROM events ORDER BY id")]


@dataclass
class Served:
    server: LiveServer
    path: str
    db: Path

    def connect(self) -> Connection:
        return Connection(self.server.port)

    def scan(self, headers: dict[str, str] | None = None) -> Answer:
        conn = self.connect()
        try:
            conn.send(get(self.path, headers=headers))
            return conn.answer()
        finally:
            conn.close()


def _serve(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    db, secret = tmp_path / "cc.sqlite3", tmp_path / "secret.key"
    path = seed_card(db, secret)
    server = LiveServer({"CONTACTCARD_DB": str(db), "CONTACTCARD_SECRET_FILE": str(secret), **(env or {})},
                        tmp_path / "server.log")
    server.start()
    try:
        served = Served(server, path, db)
        assert served.scan().status == 200  # the first scan reads the link and warms the cache
        yield served
    finally:
        server.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("lane"))


@pytest.mark.parametrize("language", ["ja", "en", "ko"])
def test_a_warm_scan_gets_the_page_the_app_gives_with_its_own_nonce_and_is_recorded(served: Served,
                                                                                   language: str) -> None:
    before = len(events(served.db))
    conn = served.connect()
    try:
        conn.send(get(served.path + "?via=app", headers={"Accept-Language": language}))  # a query: the app's route
        routed = conn.answer()
        lane = []
        for _ in range(3):  # one keep-alive connection, as a phone's browser keeps it
            conn.send(get(served.path, headers={"Accept-Language": language}))
            lane.append(conn.answer())
    finally:
        conn.close()
    assert routed.status == 200 and all(a.status == 200 for a in lane)
    assert {a.headers["content-language"] for a in lane} == {routed.headers["content-language"]}
    for answer in lane:
        assert answer.headers.keys() == routed.headers.keys()
        assert {k: v for k, v in answer.headers.items() if k not in ("date", "content-security-policy")} == \
            {k: v for k, v in routed.headers.items() if k not in ("date", "content-security-policy")}
        assert answer.without_nonce() == routed.without_nonce().replace(b"?via=app", b"")
        assert answer.policy_without_nonce() == routed.policy_without_nonce()
        header_nonce = re.search(r"'nonce-([^']+)'", answer.headers["content-security-policy"])
        assert header_nonce is not None
        assert f'nonce="{header_nonce[1]}"'.encode() in answer.body, "the style's nonce is the CSP's"
    nonces = {a.headers["content-security-policy"] for a in lane}
    assert len(nonces) == 3, "each answer has a fresh nonce"
    assert len(events(served.db)) == before + 4, "every scan, the lane's too, is stored before its answer"


def test_pipelined_requests_are_answered_in_order_and_connection_close_is_honoured(served: Served) -> None:
    before = len(events(served.db))
    conn = served.connect()
    try:
        conn.send(get(served.path), get("/healthz"), get(served.path),
                  get(served.path, headers={"Connection": "close"}))
        first, health, third, last = conn.answer(), conn.answer(), conn.answer(), conn.answer()
        assert (first.status, health.status, third.status, last.status) == (200, 200, 200, 200)
        assert health.body == b"ok"
        assert all(b"<!doctype html>" in a.body for a in (first, third, last))
        assert last.headers.get("connection") == "close"
        assert conn.closed_by_server()
    finally:
        conn.close()
    assert len(events(served.db)) == before + 3


def test_an_http_1_0_scan_is_answered_and_its_connection_closed(served: Served) -> None:
    conn = served.connect()
    try:
        conn.send(get(served.path, version="1.0"))
        answer = conn.answer()
        assert answer.status == 200 and b"<!doctype html>" in answer.body
        assert conn.closed_by_server()
    finally:
        conn.close()


def test_a_revoke_by_another_program_is_shown_by_the_next_scan(tmp_path: Path) -> None:
    """The lane answers from the cache without a data_version check per request; the commit checks it under the
    write lock, so the scan after the CLI's revoke is not stored as a view and gets the company's page."""
    for served in _serve(tmp_path):
        assert served.scan().status == 200
        served.server.cli("card", "revoke", "--employee", "taro@example.co.jp")  # another process, another connection
        answer = served.scan()
        assert answer.status == 410
        assert [outcome for outcome, _ in events(served.db)][-1] == "revoked"
        assert served.scan().status == 410


def test_the_lane_logs_and_counts_each_scan_without_the_token(served: Served) -> None:
    def scan_count() -> float:
        conn = served.connect()
        try:
            conn.send(get("/metrics"))
            text = conn.answer().body.decode()
        finally:
            conn.close()
        return sum(sample.value for family in text_string_to_metric_families(text)
                   for sample in family.samples
                   if sample.name == "contactcard_request_duration_seconds_count"
                   and sample.labels.get("route") == "/c/{token}" and sample.labels.get("status") == "200")

    before = scan_count()
    for _ in range(4):
        assert served.scan().status == 200
    assert scan_count() == before + 4
    time.sleep(0.2)  # the log handler writes once per loop turn
    log = served.server.log.read_text()
    assert served.path.removeprefix("/c/") not in log
    access = [line for line in log.splitlines() if "contactcard.access" in line]
    assert not [line for line in access if "127.0.0.1" in line], "no client address in an access line"
    scans = [line for line in access
             if re.search(r"GET /c/\{token\} 200 [\d.]+ms card=[0-9a-f]{8} visitor=[0-9a-f]{8}$", line)]
    assert len(scans) >= 5


def test_behind_a_trusted_proxy_the_lane_sees_the_client_and_sends_hsts(tmp_path: Path) -> None:
    env = {"CONTACTCARD_TRUSTED_PROXIES": "127.0.0.1", "CONTACTCARD_BASE_URL": "https://cards.example.co.jp"}
    for served in _serve(tmp_path, env):
        before = len(events(served.db))
        answers = [served.scan({"X-Forwarded-For": ip, "X-Forwarded-Proto": "https"})
                   for ip in ("198.51.100.7", "198.51.100.7", "203.0.113.9")]
        assert all(a.status == 200 for a in answers)
        assert all(a.headers["strict-transport-security"].startswith("max-age=") for a in answers)
        keys = [key for _, key in events(served.db)[before:]]
        assert keys[0] == keys[1] != keys[2], "the visitor is the forwarded client, not the proxy"


def test_with_single_sign_on_the_lane_sends_the_apps_content_security_policy(tmp_path: Path) -> None:
    """The console's sign-out form may lead on to the identity provider, so the app's policy names its origin:
    the lane's answers carry that same policy, not one of their own."""
    client_secret = tmp_path / "oidc-client-secret"
    client_secret.write_text("not-a-real-client-secret\n")
    client_secret.chmod(0o600)
    provider = "http://127.0.0.1:9"  # never asked: nobody signs in here
    env = {"CONTACTCARD_OIDC_ISSUER": provider, "CONTACTCARD_OIDC_CLIENT_ID": "contactcard",
           "CONTACTCARD_OIDC_CLIENT_SECRET_FILE": str(client_secret)}
    for served in _serve(tmp_path, env):
        conn = served.connect()
        try:
            conn.send(get(served.path + "?via=app"))  # a query: the app's route, through ``SecurityHeaders``
            routed = conn.answer()
            conn.send(get(served.path))
            lane = conn.answer()
            conn.send(get(served.path + "?via=app"), get(served.path))  # pipelined: the app's fast path
            fast = [conn.answer(), conn.answer()][1]
        finally:
            conn.close()
        assert f"form-action 'self' {provider};" in routed.headers["content-security-policy"]
        assert lane.policy_without_nonce() == fast.policy_without_nonce() == routed.policy_without_nonce()
        assert lane.headers["content-security-policy"] != routed.headers["content-security-policy"]  # own nonce
        assert [outcome for outcome, _ in events(served.db)] == ["view"] * 5


def test_a_warm_scan_is_answered_by_the_protocol_without_an_asgi_task(harness: Harness) -> None:
    """What the lane is for: after the first scan of a link, uvicorn's protocol answers it with no task, no ASGI
    messages and no middleware; the event is stored before the answer, as on the app's path."""
    path = harness.path(harness.seed())
    app = harness.client.app

    async def scenario() -> tuple[bytes, bytes, int]:
        cls = guarded_protocol(Limits(64, 10.0, 10.0), OncePerInterval(logging.getLogger("test.lane")), app)
        config = uvicorn.Config(app, http=cls, proxy_headers=False, log_level="warning")
        config.load()
        state = ServerState()
        protocol = cls(config=config, server_state=state, app_state={})
        transport = MemoryTransport()
        protocol.connection_made(transport)
        request = get(path)
        protocol.data_received(request)  # cold: the app reads the link, in a task of its own
        assert len(state.tasks) == 1
        await asyncio.gather(*state.tasks)
        first, transport.written = transport.written, b""
        protocol.data_received(request)
        tasks_for_warm_scan = len(state.tasks)
        for _ in range(500):
            if transport.written:
                break
            await asyncio.sleep(0.01)
        warm = transport.written
        protocol.pause_writing()  # the client stopped reading: its socket buffer is full
        protocol.data_received(request)
        assert len(state.tasks) == 1, "uvicorn answers it, and waits for the client before writing"
        protocol.resume_writing()
        await asyncio.gather(*state.tasks)
        return first, warm, tasks_for_warm_scan

    before = len(harness.events())
    cold, warm, tasks = harness.run(scenario)
    assert tasks == 0
    assert cold.startswith(b"HTTP/1.1 200 OK\r\n") and warm.startswith(b"HTTP/1.1 200 OK\r\n")
    assert NONCE.sub(b"N", cold.split(b"\r\n\r\n", 1)[1]) == NONCE.sub(b"N", warm.split(b"\r\n\r\n", 1)[1])
    assert len(harness.events()) == before + 3


def test_with_the_contact_form_on_each_answer_carries_its_own_form_token(tmp_path: Path) -> None:
    """The lane keeps whole answers for reuse; a page with the contact form is never one of them, since its
    signed token is bound to the moment it was served."""
    for served in _serve(tmp_path):
        served.server.cli("company", "set", "--name", "株式会社テスト", "--leads", "on")
        tokens = []
        for _ in range(3):
            answer = served.scan()
            assert answer.status == 200
            found = re.search(rb'name="form_token" value="([^"]+)"', answer.body)
            assert found is not None, "the form is on the page"
            tokens.append(found[1])
        assert len(set(tokens)) == 3


def test_the_lane_sends_uvicorns_current_default_headers() -> None:
    """The lane joins uvicorn's default header lines once per list; uvicorn makes a new list when the date
    changes, and the lane's answers carry the new date from then on."""
    from starlette.applications import Starlette

    from contactcard.web.accesslog import AccessLog
    from contactcard.web.lane import ScanLane

    lane = ScanLane(Starlette(), AccessLog(Starlette()), None, [], csp_tail())
    first = [(b"date", b"Sun, 29 Nov 2026 15:00:00 GMT"), (b"server", b"uvicorn")]
    assert lane.default_lines(first) == b"date: Sun, 29 Nov 2026 15:00:00 GMT\r\nserver: uvicorn\r\n"
    assert lane.default_lines(first) is lane.default_lines(first)
    second = [(b"date", b"Sun, 29 Nov 2026 15:00:01 GMT"), (b"server", b"uvicorn")]
    assert lane.default_lines(second) == b"date: Sun, 29 Nov 2026 15:00:01 GMT\r\nserver: uvicorn\r\n"


def test_a_prepared_answer_is_served_only_for_the_very_objects_it_shows() -> None:
    """A kept answer is reused while the resolution shows the same company, card, employee and channels objects
    (the service's cache makes new ones on any change); a new object in any of the four means a new render."""
    import dataclasses
    from typing import Any

    from contactcard.models import Outcome
    from contactcard.service import DEFAULT_COMPANY, Resolution
    from contactcard.web.lane import Prepared, PreparedAnswers

    card, employee, channel = object(), object(), object()
    shown: dict[str, Any] = {"card": card, "employee": employee, "channels": (channel,)}
    res = Resolution(Outcome.VIEW, DEFAULT_COMPANY, **shown)
    answers = PreparedAnswers([], csp_tail())
    key = ("token", Outcome.VIEW, None, None)
    answers._answers[key] = Prepared((res.company, card, employee, res.channels), 200, (b"head ", b" body"))
    assert answers.get(key, res) is answers._answers[key]
    changes: list[dict[str, Any]] = [{"company": dataclasses.replace(DEFAULT_COMPANY)}, {"card": object()},
                                     {"employee": object()}, {"channels": tuple([channel])}]
    for change in changes:
        assert answers.get(key, dataclasses.replace(res, **change)) is None, change
