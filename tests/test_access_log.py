"""Finding 3: the server's output holds no client address and no token, at any level, tracebacks included.

The real ``contactcard serve`` runs in a subprocess; a client bound to 127.0.0.77 scans a card, follows a channel,
downloads the vCard, opens an invitation and a reset link, sets a password, signs in and out, sends a malformed
request and hangs up mid-body. Then the captured output is searched for the address and for every token the
client saw (card, invitation, reset, session cookie, CSRF cookie and form tokens): none may appear, and each
request has its line with the route template.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from pathlib import Path

import httpx2 as httpx
import pytest

from .live_server import LiveServer

pytestmark = pytest.mark.slow

CLIENT_IP = "127.0.0.77"
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
_GO = re.compile(r'href="(/c/[^"]+/go/\d+)"')


def _link(server: LiveServer, *args: str) -> str:
    url: str = json.loads(server.cli(*args, "--json"))["url"]
    return url.removeprefix(server.base)


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field"
    return found[1]


def _raw(server: LiveServer, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server.port), source_address=(CLIENT_IP, 0), timeout=5) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            s.recv(65536)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_holds_no_address_and_no_token(tmp_path: Path, log_format: str) -> None:
    server = LiveServer({"CONTACTCARD_DB": str(tmp_path / "cc.sqlite3"),
                         "CONTACTCARD_SECRET_FILE": str(tmp_path / "secret.key")}, tmp_path / "server.log")
    server.cli("company", "set", "--name", "Acme", "--email", "info@acme.example", "--allow-email-domain",
               "acme.example", "--allow-phone-prefix", "+813")
    server.cli("employee", "add", "--email", "taro@acme.example", "--name", "山田 太郎")
    server.cli("channel", "add", "--employee", "taro@acme.example", "--kind", "phone", "--target", "tel:03-1234-5679")
    card = _link(server, "card", "issue", "--employee", "taro@acme.example")
    invite = _link(server, "user", "invite", "--employee", "taro@acme.example")
    server.cli("create-admin", "--email", "admin@acme.example")
    reset = _link(server, "user", "reset", "--email", "admin@acme.example")
    secrets = {card.rsplit("/", 1)[1], invite.rsplit("/", 1)[1], reset.rsplit("/", 1)[1]}
    server.start(args=("--log-format", log_format))
    try:
        transport = httpx.HTTPTransport(local_address=CLIENT_IP)
        with httpx.Client(transport=transport, base_url=server.base, follow_redirects=False, timeout=10) as c:
            page = c.get(card)
            assert page.status_code == 200
            go = _GO.search(page.text)
            assert go and c.get(go[1]).status_code == 303
            assert c.get(card + "/vcard").status_code == 200
            assert c.get(card + "?utm=x").status_code == 200  # the ordinary route, not the hot path
            form = c.get(invite)
            assert form.status_code == 200
            accepted = c.post(invite, data={"csrf": _csrf(form.text), "password": PASSWORD, "password2": PASSWORD})
            assert accepted.status_code == 303
            me = c.get("/me")
            assert me.status_code == 200
            secrets.add(_csrf(me.text))
            assert c.post("/logout", data={"csrf": _csrf(me.text)}).status_code == 303
            assert c.get(reset).status_code == 200
            login = c.get("/login")
            secrets.add(_csrf(login.text))
            wrong = c.post("/login", data={"csrf": _csrf(login.text), "email": "admin@acme.example",
                                           "password": "wrong password!"})
            assert wrong.status_code == 400
            signed_in = c.post("/login", data={"csrf": _csrf(login.text), "email": "taro@acme.example",
                                               "password": PASSWORD})
            assert signed_in.status_code == 303
            secrets.update(v for v in c.cookies.values() if v)
            for response in (accepted, signed_in, form, login):
                for header in response.headers.get_list("set-cookie"):
                    value = header.split("=", 1)[1].split(";", 1)[0]
                    if value:
                        secrets.add(value)
        # a malformed request and a body that never finishes, both naming live tokens
        _raw(server, f"GET {card} HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n".encode())
        _raw(server, f"POST {invite} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     f"Content-Length: 1000\r\n\r\ncsrf=abc".encode())
        assert c.is_closed
        assert server.proc is not None
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    assert CLIENT_IP not in log
    assert len(secrets) >= 7
    for secret in secrets:
        assert secret not in log, "a token reached the log"
    assert "Traceback" not in log
    for template in ("GET /c/{token} 200", "GET /c/{token}/go/{channel} 303", "GET /c/{token}/vcard 200",
                     "GET /invite/{token} 200", "POST /invite/{token} 303", "POST /login 400", "POST /login 303",
                     "POST /invite/{token} 499"):
        method, route, status = template.split()
        if log_format == "json":
            lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
            assert any(e.get("method") == method and e.get("route") == route and e.get("status") == int(status)
                       for e in lines), template
        else:
            assert f" {template} " in log, template
    # card lines carry the short card digest and the visitor's pseudonym prefix, 8 hex digits each
    if log_format == "json":
        entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        scans = [e for e in entries if e.get("route") == "/c/{token}"]
        assert scans and all(re.fullmatch("[0-9a-f]{8}", e["card"]) and re.fullmatch("[0-9a-f]{8}", e["visitor"])
                             for e in scans)
    else:
        assert re.search(r" GET /c/\{token\} 200 [0-9.]+ms card=[0-9a-f]{8} visitor=[0-9a-f]{8}\n", log)
