"""Every form post in the app, found by walking the route table (admin, /me, sign-in, invitation, sign-out).

CSRF by construction: a route that takes a POST without the check stops the app from being built, and every
POST route answers a signed-in admin's missing, empty or foreign token with 403 and writes nothing. A client
that hangs up mid-body on any of them leaves no traceback in the log and writes nothing (review finding 16).
"""

from __future__ import annotations

import io
import logging
import socket
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message

from bench.processes import free_port
from contactcard.app import create_app
from contactcard.config import Settings
from contactcard.models import EmployeeProfile
from contactcard.web import forms, me, session
from contactcard.web.bearer import BearerRoute

from .accounts_kit import ADMIN_EMAIL, PASSWORD, accounts, csrf_of, login, make_admin, make_employee
from .conftest import FakeClock, Harness
from .route_walk import concrete

# Everything a form could change. Sessions are left out: each signed-in request touches its own row.
TABLES = ("company", "media", "employees", "channels", "cards", "users", "invitations", "login_failures", "audit",
          "api_tokens")


def snapshot(settings: Settings) -> dict[str, list[Any]]:
    conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    finally:
        conn.close()


def form_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    """(path template, route) for every route that takes a method other than GET/HEAD/OPTIONS."""
    for route in routes:
        if isinstance(route, Mount):
            yield from form_routes(list(route.routes), prefix + route.path)
        elif isinstance(route, Route) and (route.methods is None or route.methods - forms.SAFE_METHODS):
            yield prefix + route.path, route


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


@dataclass
class World:
    """A seeded app with a signed-in admin, and the values that fill every route's path."""

    h: Harness
    params: dict[str, object]
    general_channel: int
    foreign: str  # the signed-in employee's CSRF token: valid, but not this session's

    def path(self, template: str) -> str:
        values = dict(self.params)
        if template.startswith("/admin/settings"):
            values["channel"] = self.general_channel
        return concrete(template, values)


# Fields every form might read, so a route that skipped the check would have something to write.
FIELDS = {"family_name": "x", "email": ADMIN_EMAIL, "password": PASSWORD, "password2": PASSWORD,
          "kind": "phone", "target": "03-1234-9999", "direction": "down", "name": "x", "days": "5",
          "default_card_days": "5", "retention_days": "5"}


@pytest.fixture
def world(harness: Harness) -> World:
    h = harness
    h.seed()
    taro = h.run(h.service.find_employee, "taro@example.co.jp")
    h.run(h.service.add_employee, EmployeeProfile(email="hanako@example.co.jp", family_name="佐藤"), actor="cli")
    hanako = h.run(h.service.find_employee, "hanako@example.co.jp")
    link = h.run(accounts(h).invite_employee, hanako.id, actor="cli")
    make_employee(h)
    make_admin(h)
    login(h.client, "taro@example.co.jp")
    foreign = csrf_of(h.client.get("/me").text)
    assert login(h.client, ADMIN_EMAIL).status_code == 303
    params = {"id": taro.id, "channel": h.run(h.service.channels, taro.id)[0].id, "action": "revoke",
              "token": link.token, "rest": "x"}
    general = h.run(h.service.channels, None)[0].id
    return World(h, params, general, foreign)


def post(world: World, template: str, route: Route, token: str | None) -> int:
    data = {**FIELDS, **({} if token is None else {"csrf": token})}
    files = {"file": ("p.jpg", jpeg(), "image/jpeg")} if getattr(route, "takes_upload", False) else None
    return world.h.client.post(world.path(template), data=data, files=files).status_code


def test_every_post_route_refuses_a_missing_empty_or_foreign_token_and_writes_nothing(
        world: World, settings: Settings) -> None:
    h = world.h
    found = sorted(form_routes(list(h.client.app.routes)), key=lambda r: r[0])  # type: ignore[attr-defined]
    # bearer routes take no form and read no cookie: their own tests cover them (test_bearer_route, test_scim)
    checked = [(path, route) for path, route in found
               if not isinstance(route, forms.SessionlessRoute | forms.SignedFormRoute | BearerRoute)]
    assert [path for path, route in found if isinstance(route, forms.SessionlessRoute)] == ["/c/{rest:path}"]
    # the card's contact form: its own signed token instead (tests/test_leads.py)
    assert [path for path, route in found if isinstance(route, forms.SignedFormRoute)] == ["/c/{token}"]
    bearer = [(path, route) for path, route in found if isinstance(route, BearerRoute)]
    assert len(bearer) >= 10, "the JSON API's writes"
    assert {"/login", "/logout", "/invite/{token}", "/me/rotate", "/admin/settings/logo"} <= {p for p, _ in checked}
    assert len(checked) >= 19  # 15 in the console, /me/rotate, sign-in, sign-out, invitation
    cookie_token = next((v for k, v in h.client.cookies.items() if k.endswith(session.CSRF_COOKIE)), None)
    assert cookie_token, "the sign-in page set the double-submit cookie"
    before = snapshot(settings)
    for template, route in checked:
        # no token, an empty one, another user's, the signed-out double-submit one, a made-up one
        for token in (None, "", world.foreign, cookie_token, "x" * 5000):
            status = post(world, template, route, token)
            assert status == 403, (template, token and token[:8], status)
    assert snapshot(settings) == before, "nothing was written"
    assert h.client.get("/admin").status_code == 200, "still signed in: the sign-out was refused too"

    # A bearer route (API, SCIM) never takes the session as a credential: the admin's cookie and this session's
    # own CSRF token, in a form or as JSON, get a 401 and change nothing.
    own = csrf_of(h.client.get("/admin").text)
    for template, route in bearer:
        for method in sorted(route.methods or ()):
            r = h.client.request(method, world.path(template), data={**FIELDS, "csrf": own})
            assert r.status_code == 401, (method, template, r.status_code)
            r = h.client.request(method, world.path(template), json={**FIELDS, "csrf": own})
            assert r.status_code == 401, (method, template, r.status_code)
    assert snapshot(settings) == before, "nothing was written"

    # The control: the same requests with this session's token get past the check (so the 403s above were
    # the check's, not a wrong id or guard). /me/rotate and /me/notify are 403 for an admin who is no employee.
    for template, route in sorted(checked, key=lambda r: r[0] == "/logout"):
        status = post(world, template, route, own)
        assert status != 403 or template in ("/me/rotate", "/me/notify"), (template, status)
    assert snapshot(settings) != before


async def did_it(request: Request) -> Response:
    return Response("changed something")


class RawApp:
    async def __call__(self, scope: object, receive: object, send: object) -> None:
        raise AssertionError("never reached")


@pytest.mark.parametrize("unsafe", [
    Route("/sneaky", did_it, methods=["POST"]),
    Route("/sneaky", did_it, methods=["GET", "DELETE"]),
    Mount("/admin", routes=[Route("/sneaky", did_it, methods=["PUT"])]),
    Route("/sneaky", RawApp()),  # an ASGI app takes every method
    Mount("/sneaky", app=RawApp()),
])
def test_a_route_that_takes_a_post_without_the_check_cannot_be_built(
        unsafe: BaseRoute, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    forms.check_routes([Route("/fine", did_it, methods=["GET"])])
    with pytest.raises(forms.UnsafeRoute, match="sneaky"):
        forms.check_routes([Route("/fine", did_it, methods=["GET"]), unsafe])
    monkeypatch.setattr(me, "routes", [*me.routes, unsafe])
    with pytest.raises(forms.UnsafeRoute, match="sneaky"):
        create_app(settings)


# --- a client that hangs up mid-body (review finding 16) -------------------------------------------


def hang_up(world: World, template: str, route: Route) -> list[Message]:
    """The request as a server hands it over when the client closes after part of the body."""
    h = world.h
    cookie = "; ".join(f"{name}={value}" for name, value in h.client.cookies.items())
    body = f"csrf={csrf_of(h.client.get('/admin').text)}&family_name=x&kind=phone&tar".encode()
    kind = b"multipart/form-data; boundary=xyz" if getattr(route, "takes_upload", False) else \
        b"application/x-www-form-urlencoded"
    if kind.startswith(b"multipart"):
        body = b"--xyz\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--xyz\r\nContent-Dispo"
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": world.path(template), "raw_path": world.path(template).encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80),
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", kind), (b"content-length", b"100000"),
                         (b"cookie", cookie.encode())]}
    incoming: list[Message] = [{"type": "http.request", "body": body, "more_body": True},
                               {"type": "http.disconnect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if len(incoming) > 1 else incoming[0]

    async def send(message: Message) -> None:
        sent.append(message)

    h.run(h.client.app, scope, receive, send)
    return sent


def test_a_hang_up_mid_body_on_any_form_logs_nothing_and_writes_nothing(
        world: World, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    h = world.h
    found = [(p, r) for p, r in form_routes(list(h.client.app.routes))  # type: ignore[attr-defined]
             if not isinstance(r, forms.SessionlessRoute | BearerRoute)]
    before = snapshot(settings)
    with caplog.at_level(logging.INFO):
        for template, route in found:
            sent = hang_up(world, template, route)
            assert sent[0]["status"] == 400, (template, sent[0])
    assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
    assert snapshot(settings) == before
    assert h.client.get("/admin").status_code == 200


def test_hang_ups_on_the_real_server_leave_no_traceback(settings: Settings, clock: FakeClock,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """The reproduction from the review, against uvicorn: POST with Content-Length 1000, a few bytes, close."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, clock=clock), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False))
    thread = threading.Thread(target=server.run)
    with caplog.at_level(logging.INFO):
        thread.start()
        try:
            while not server.started:
                assert thread.is_alive(), "the server did not start"
                thread.join(timeout=0.02)
            before = snapshot(settings)
            for path in ("/login", "/invite/x", "/logout"):
                with socket.create_connection(("127.0.0.1", port)) as conn:
                    conn.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                                 "Content-Type: application/x-www-form-urlencoded\r\n\r\ncsrf=abc&em".encode())
        finally:
            server.should_exit = True  # a graceful stop: waits for the requests in flight to finish
            thread.join()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]
    assert snapshot(settings) == before
